"""The Actor on the in-process bus: training online, predicting, evaluating, transfer, commands, snapshots."""

import json
import time

import numpy as np
import pytest

from h3spark.actors import Actor, MemoryBus, command, control_topic, end_marker, features_envelope, raw_envelope
from h3spark.actors._snapshot import Snapshots
from h3spark.config import ActorConfig
from h3spark.storage import join_uri
from h3spark.train.engines.model import softmax

DEADLINE_S = 30.0


def blobs(rows: int, seed: int = 0):
    """Two well separated classes in 4 features."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    features = rng.normal(0, 0.5, (rows, 4)) + labels[:, None] * 3.0
    return features.astype(np.float32), labels


def config(**overrides) -> ActorConfig:
    base = {"inputs": {"data": "train"}, "training": {"batch_size": 8, "lr": 0.05},
            "model": {"mlp": {"input_shape": [4], "hidden": [8], "classes": 2}, "seed": 1}}
    return ActorConfig.model_validate({**base, **overrides})


def make(bus, name="learner", home=None, **overrides) -> Actor:
    return Actor.from_config(name, config(**overrides), bus, workdir="/tmp", network="net", home=home)


def send_batches(bus, topic, rows, per_message, seed=0, sender="producer", meta=None):
    features, labels = blobs(rows, seed)
    for begin in range(0, rows, per_message):
        bus.publish(topic, features_envelope(sender, features[begin:begin + per_message],
                                             labels[begin:begin + per_message], meta=meta))


def run_until(actor, condition):
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not reached; status {actor.status()}"
        actor.poll(timeout_s=0.05)


def test_a_learner_trains_one_step_per_minibatch_and_scores_what_is_held_out():
    bus = MemoryBus()
    send_batches(bus, "data", 200, 30)                                   # 200 rows: 25 minibatches of 8
    send_batches(bus, "data", 40, 20, seed=1, meta={"split": "holdout"})
    bus.publish("data", end_marker("producer"))
    status = make(bus).run()
    assert status["state"] == "stopped" and status["step"] == 25 and status["rows_trained"] == 200
    assert status["handled"] == 10 and status["evaluated"]["rows"] == 40
    assert status["evaluated"]["accuracy"] >= 0.95


def test_rows_left_in_a_partial_minibatch_are_trained_when_the_stream_ends():
    bus = MemoryBus()
    send_batches(bus, "data", 20, 20)
    bus.publish("data", end_marker("producer"))
    status = make(bus).run()
    assert status["step"] == 3 and status["rows_trained"] == 20          # 8 + 8 + the last 4


def test_raw_records_go_through_the_actors_pipeline_and_bad_rows_to_its_quarantine(tmp_path):
    bus = MemoryBus()
    features, labels = blobs(64)
    lines = [",".join(f"{value:.4f}" for value in row) + f",{label}" for row, label in zip(features, labels)]
    lines[3], lines[10] = "1,2,3", "a,b,c,d,1"                          # a short line, a field that is no number
    bus.publish("data", raw_envelope("producer", lines, "csv", ["a", "b", "c", "d", "label"]))
    bus.publish("data", end_marker("producer"))
    pipeline = {"steps": [{"kind": "standard_scale", "columns": ["a", "b", "c", "d"]},
                          {"kind": "assemble", "columns": ["a", "b", "c", "d"]}],
                "fit_rows": 32, "types": {"label": "int64"}}
    actor = make(bus, home=f"file://{tmp_path}/learner", pipeline=pipeline)
    status = actor.run()
    assert status["rows_trained"] == 62 and status["quarantined"] == 2
    assert status["quarantine_reasons"] == {"malformed record (wrong number of fields, broken JSON or a value of "
                                            "the wrong type)": 2}
    part = tmp_path / "learner" / "quarantine" / "part-00001.jsonl"
    rows = [json.loads(line) for line in part.read_text().splitlines()]
    assert [row["step"] for row in rows] == ["read", "read"] and "1,2,3" in rows[0]["row"]
    assert actor.intake.pipeline.is_fitted and actor.intake.pipeline.rows_fitted_ == 64


def test_a_pipeline_waits_for_fit_rows_then_transforms_the_rows_it_held():
    bus = MemoryBus()
    features, labels = blobs(40)
    records = [json.dumps({"features": [abs(float(v)) for v in row], "label": int(label)})
               for row, label in zip(features, labels)]
    for begin in range(0, 20, 10):
        bus.publish("data", raw_envelope("producer", records[begin:begin + 10], "json"))
    pipeline = {"steps": [{"kind": "image", "columns": ["features"], "shape": [4]}], "fit_rows": 25}
    actor = make(bus, pipeline=pipeline)
    actor.open()
    run_until(actor, lambda: actor.stats.handled == 2)
    assert actor.model.step == 0 and actor.intake.held_rows == 20 and not actor.intake.fitted
    for begin in range(20, 40, 10):
        bus.publish("data", raw_envelope("producer", records[begin:begin + 10], "json"))
    run_until(actor, lambda: actor.stats.handled == 4)
    assert actor.intake.fitted and actor.stats.rows_trained == 40 and actor.model.step == 5
    actor.close()


def test_a_predictor_publishes_probabilities_stamped_with_the_model_version_it_used():
    bus = MemoryBus()
    send_batches(bus, "data", 6, 6)
    actor = make(bus, inputs={"data": "predict"}, outputs={"predictions": "out"}, temperature=2.0,
                 include_inputs=True)
    actor.model.step = 17
    actor.open()
    run_until(actor, lambda: actor.stats.predictions_published == 1)
    actor.close()
    published = [record for record in bus.read("out")]
    from h3spark.actors import decode

    message = decode(published[0].value)
    features, labels = blobs(6)
    assert message.kind == "predictions" and message.computed_with == 17 and message.model_version == 17
    expected = softmax(actor.model.logits(features), 2.0)
    assert np.allclose(message.arrays["probabilities"], expected, atol=1e-6)
    assert np.array_equal(message.arrays["features"], features) and message.arrays["label"].tolist() == labels.tolist()
    assert message.meta == {"temperature": 2.0} and actor.status()["predicted"]["rows"] == 6
    assert decode(published[-1].value).meta == {"op": "end"}              # its stream ends when it stops


def test_parameters_load_by_layer_name_and_frozen_layers_stay_while_training_goes_on():
    bus = MemoryBus()
    teacher = make(bus, "teacher", outputs={"parameters": "weights"}, publish_parameters={"layers": ["hidden0"]})
    teacher.model.set_weights({name: value + 1.0 for name, value in teacher.model.get_weights().items()})
    teacher.publish_parameters()
    student = make(bus, "student", inputs={"weights": "train", "data": "train"},
                   accept_parameters={"layers": ["hidden0"], "freeze": True})
    before_logits = student.model.get_weights(["logits"])
    student.open()
    run_until(student, lambda: student.stats.parameters_loaded == 1)
    loaded = student.model.get_weights(["hidden0"])
    assert all(np.array_equal(loaded[name], value) for name, value in teacher.model.get_weights(["hidden0"]).items())
    send_batches(bus, "data", 32, 16)
    run_until(student, lambda: student.model.step == 4)
    student.close()
    assert all(np.array_equal(student.model.get_weights(["hidden0"])[name], value) for name, value in loaded.items())
    assert not np.array_equal(student.model.get_weights(["logits"])["logits.weight"], before_logits["logits.weight"])
    assert student.status()["frozen"] == ["hidden0"]


def test_parameters_of_unknown_layers_are_refused_and_the_actor_goes_on():
    bus = MemoryBus()
    bus.publish("weights", features_envelope("x", np.ones((1, 4))).__class__(
        "parameters", "other", model_version=3, arrays={"conv9.weight": np.ones(3, np.float32)}))
    send_batches(bus, "weights", 8, 8)
    actor = make(bus, inputs={"weights": "train"}, accept_parameters={})
    actor.open()
    run_until(actor, lambda: actor.stats.handled == 2)
    actor.close()
    assert actor.stats.rejected == 1 and actor.model.step == 1


def test_parameters_are_ignored_unless_accepted_from_that_sender():
    bus = MemoryBus()
    other = make(bus, "other", outputs={"parameters": "weights"}, publish_parameters={})
    other.publish_parameters()
    actor = make(bus, inputs={"weights": "train"}, accept_parameters={"senders": ["teacher"]})
    weights = actor.model.get_weights()
    actor.open()
    run_until(actor, lambda: actor.stats.handled == 1)
    actor.close()
    assert actor.stats.ignored == 1 and actor.stats.parameters_loaded == 0
    assert all(np.array_equal(actor.model.get_weights()[name], value) for name, value in weights.items())


def test_commands_pause_resume_snapshot_and_stop_and_old_or_others_commands_are_ignored(tmp_path):
    bus = MemoryBus()
    bus.publish(control_topic("net"), command("stop"))                  # sent before the actor started
    actor = make(bus, home=f"file://{tmp_path}/learner")
    actor.open()
    bus.publish(control_topic("net"), command("pause", "learner"))
    bus.publish(control_topic("net"), command("stop", "someone-else"))
    run_until(actor, lambda: actor.paused)
    send_batches(bus, "data", 16, 16)
    for _ in range(5):
        actor.poll(timeout_s=0.01)
    assert actor.stats.rows_trained == 0 and actor.state == "paused"
    bus.publish(control_topic("net"), command("resume"))
    run_until(actor, lambda: actor.model.step == 2)
    bus.publish(control_topic("net"), command("snapshot", "learner"))
    run_until(actor, lambda: actor.stats.snapshots == 1)
    assert Snapshots(f"file://{tmp_path}/learner/snapshots").latest().step == 2
    bus.publish(control_topic("net"), command("stop", "learner"))
    run_until(actor, lambda: actor.stopping)
    actor.close()
    assert actor.state == "stopped" and actor.stats.ignored == 2


def test_a_replayed_message_is_skipped_by_id_and_never_trained_on_twice():
    bus = MemoryBus()
    send_batches(bus, "data", 16, 16)
    actor = make(bus)
    actor.open()
    run_until(actor, lambda: actor.model.step == 2)
    actor.data.seek("data", 0)
    send_batches(bus, "data", 8, 8, seed=3)
    run_until(actor, lambda: actor.model.step == 3)
    actor.close()
    assert actor.status()["duplicates"] == 1 and actor.stats.rows_trained == 24


def test_a_restarted_actor_resumes_from_its_snapshot_and_its_groups_committed_offsets(tmp_path):
    bus = MemoryBus()
    home = f"file://{tmp_path}/learner"
    send_batches(bus, "data", 56, 8)                                      # 7 messages, one step each
    first = make(bus, home=home, snapshot_every_steps=5)
    first.open()
    run_until(first, lambda: first.stats.handled == 7)
    weights = first.model.get_weights()
    for subscription in (first.data, first.control_subscription):        # killed: no final snapshot
        subscription.close()
    assert bus.committed("net.learner", "data") == 7
    send_batches(bus, "data", 8, 8, seed=5)
    second = make(bus, home=home, snapshot_every_steps=5)
    assert second.model.step == 5 and second.records_after_snapshot == 3  # offsets 4 (snapshot, taken in 5's step) .. 7
    assert second.stats.handled == 4                                      # its counters go on from the snapshot's
    second.open()
    run_until(second, lambda: second.model.step == 6)
    second.close()
    assert second.stats.handled == 5 and second.offsets == {"data/0": 8}
    assert not np.array_equal(second.model.get_weights()["logits.weight"], weights["logits.weight"])


def test_the_stream_of_a_topic_ends_when_every_sender_on_it_ended():
    bus = MemoryBus()
    send_batches(bus, "data", 8, 8, sender="a")
    send_batches(bus, "data", 8, 8, sender="b")
    bus.publish("data", end_marker("a"))
    actor = make(bus)
    actor.open()
    run_until(actor, lambda: actor.stats.handled == 3)
    assert not actor.stopping
    bus.publish("data", end_marker("b"))
    run_until(actor, lambda: actor.stopping)
    actor.close()


def test_max_steps_stops_the_actor():
    bus = MemoryBus()
    send_batches(bus, "data", 80, 8)
    status = make(bus, max_steps=4, stop_at_end=False).run()
    assert status["step"] == 4 and status["state"] == "stopped" and status["rows_trained"] == 32
    assert bus.committed("net.learner", "data") == 4                      # the rest stays for its next run


def test_rows_without_labels_on_a_topic_used_to_train_are_refused_and_counted():
    bus = MemoryBus()
    bus.publish("data", features_envelope("p", np.ones((4, 4))))
    send_batches(bus, "data", 8, 8)
    bus.publish("data", end_marker("p"))
    bus.publish("data", end_marker("producer"))
    status = make(bus).run()
    assert status["rejected"] == 1 and status["step"] == 1


def test_another_actors_predictions_teach_their_arg_max_by_default_and_the_hook_can_be_replaced():
    bus = MemoryBus()
    features, labels = blobs(16)
    probabilities = np.eye(2, dtype=np.float32)[labels]
    from h3spark.actors import Envelope

    bus.publish("teacher.out", Envelope("predictions", "teacher", model_version=9, computed_with=9,
                                        arrays={"probabilities": probabilities, "features": features}))
    actor = make(bus, inputs={"teacher.out": "train"})
    actor.open()
    run_until(actor, lambda: actor.model.step == 2)
    seen = []
    actor.learn_from_predictions = lambda me, envelope, use: seen.append((envelope.computed_with, use))
    bus.publish("teacher.out", Envelope("predictions", "teacher", model_version=10, computed_with=10,
                                        arrays={"probabilities": probabilities, "features": features}))
    run_until(actor, lambda: seen)
    actor.close()
    assert seen == [(10, "train")] and actor.model.step == 2


def test_a_snapshot_keeps_the_model_the_fitted_pipeline_and_the_frozen_layers(tmp_path):
    bus = MemoryBus()
    home = f"file://{tmp_path}/a"
    records = [json.dumps({"features": [abs(float(v)) for v in row], "label": int(label)}) for row, label in zip(*blobs(16))]
    bus.publish("data", raw_envelope("p", records, "json"))
    pipeline = {"steps": [{"kind": "image", "columns": ["features"], "shape": [4]}], "fit_rows": 8}
    actor = make(bus, home=home, pipeline=pipeline)
    actor.model.freeze(["hidden0"])
    actor.open()
    run_until(actor, lambda: actor.model.step == 2)
    actor.close()
    again = make(bus, home=home, pipeline=pipeline)
    assert again.model.step == 2 and again.model.frozen() == frozenset({"hidden0"}) and again.intake.fitted
    assert again.intake.pipeline.to_dict() == actor.intake.pipeline.to_dict()
    snapshot = Snapshots(join_uri(home, "snapshots")).latest()
    assert snapshot.state["offsets"] == {"data/0": 1} and snapshot.state["step"] == 2


@pytest.mark.parametrize("overrides, message", [
    ({"inputs": {"bad topic": "train"}}, "topic name"),
    ({"inputs": {"d": "predict"}}, "outputs.predictions"),
    ({"publish_parameters": {}}, "outputs.parameters"),
    ({"model": {"mlp": {"input_shape": [4], "classes": 2}, "file": "m.safetensors"}}, "exactly one of"),
    ({"model": {"file": "../outside.safetensors"}}, "climbs out of the workdir"),
    ({"pipeline": {"uri": "d", "file": "p.json"}}, "exactly one of uri, file or steps"),
])
def test_an_actor_config_that_cannot_work_is_refused_with_the_fix(overrides, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        config(**overrides)
