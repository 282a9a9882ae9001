"""Distillation between actors and the validation sentinel on the in-process bus: the student's steps are
the model contract's distill_step on the teacher's soft targets, held-out rows flow through a predictor to
be scored downstream, and the sentinel scores the learner's published weights stamped with their version."""

import numpy as np
import pytest
from pydantic import ValidationError

from h3spark.actors import Actor, MemoryBus, decode, end_marker, features_envelope, produce
from h3spark.actors._records import record_texts
from h3spark.actors._sentinel import VALIDATION, Sentinel
from h3spark.config import ActorConfig
from h3spark.train.engines.model import build_model, softmax

MODEL = {"mlp": {"input_shape": [4], "hidden": [8], "classes": 2}, "seed": 1}


def blobs(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    return (rng.normal(0, 0.8, (rows, 4)) + labels[:, None] * 1.5).astype(np.float32), labels


def make(bus, name, kind=Actor, **config) -> Actor:
    config = ActorConfig.model_validate({"model": MODEL, "training": {"batch_size": 8, "lr": 0.05}, **config})
    return kind.from_config(name, config, bus, workdir="/tmp", network="net")


def send(bus, topic, features, labels, per_message=8, meta=None):
    for begin in range(0, len(labels), per_message):
        bus.publish(topic, features_envelope("producer", features[begin:begin + per_message],
                                             labels[begin:begin + per_message], meta=meta))


def teacher_and_student(bus, alpha=0.7, labels=True):
    teacher = make(bus, "teacher", inputs={"transfer": "predict"}, outputs={"predictions": "soft"}, temperature=3.0,
                   include_inputs=True, model={**MODEL, "seed": 9})
    student = make(bus, "student", inputs={"soft": "train"}, distill={"alpha": alpha, "labels": labels})
    return teacher, student


def test_a_student_takes_one_distillation_step_per_minibatch_of_the_teachers_soft_targets():
    bus = MemoryBus()
    features, labels = blobs(40)
    send(bus, "transfer", features, labels, per_message=20)
    bus.publish("transfer", end_marker("producer"))
    teacher, student = teacher_and_student(bus)
    assert teacher.run()["predictions_published"] == 2
    status = student.run()
    assert status["step"] == 6 and status["rows_trained"] == 40 and status["rejected"] == 0   # 8 + 8 + 4 a message
    twin = build_model("numpy", student.model.spec, seed=1, options=student.model.options)
    soft = softmax(teacher.model.logits(features), 3.0)
    for begin in [0, 8, 16, 20, 28, 36]:
        end = min(begin + 8, 20 if begin < 20 else 40)
        twin.distill_step(features[begin:end], soft[begin:end], 3.0, labels[begin:end], 0.7)
    for name, value in twin.get_weights().items():
        np.testing.assert_allclose(student.model.get_weights()[name], value, rtol=1e-6, atol=1e-7)


def test_held_out_rows_go_through_the_teacher_marked_holdout_and_the_student_scores_them_without_training():
    bus = MemoryBus()
    features, labels = blobs(48)
    send(bus, "transfer", features[:32], labels[:32])
    send(bus, "transfer", features[32:], labels[32:], meta={"split": "holdout"})
    bus.publish("transfer", end_marker("producer"))
    teacher, student = teacher_and_student(bus)
    teacher_status = teacher.run()
    held = [decode(record.value) for record in bus.read("soft")][4:6]
    assert [message.meta.get("split") for message in held] == ["holdout", "holdout"]
    assert teacher_status["evaluated"]["rows"] == 16 and teacher_status["predicted"]["rows"] == 32
    status = student.run()
    assert status["rows_trained"] == 32 and status["evaluated"]["rows"] == 16
    expected = np.mean(student.model.logits(features[32:]).argmax(axis=1) == labels[32:])
    assert status["evaluated"]["accuracy"] == pytest.approx(expected)


def test_predictions_a_student_cannot_learn_from_are_refused_and_counted():
    bus = MemoryBus()
    features, labels = blobs(16)
    send(bus, "transfer", features, labels)
    bus.publish("transfer", end_marker("producer"))
    teacher = make(bus, "teacher", inputs={"transfer": "predict"}, outputs={"predictions": "soft"})  # no inputs sent on
    teacher.run()
    status = make(bus, "student", inputs={"soft": "train"}, distill={}).run()
    assert status["rejected"] == 2 and status["step"] == 0 and status["state"] == "stopped"


def learner_and_sentinel(bus, every_steps=5, every_s=0.0):
    features, labels = blobs(80, seed=2)
    send(bus, "data", features, labels)                                     # 10 steps of 8
    bus.publish("data", end_marker("producer"))
    learner = make(bus, "learner", inputs={"data": "train"}, outputs={"parameters": "weights"},
                   publish_parameters={"every_steps": every_steps})
    sentinel = make(bus, "sentinel", Sentinel, inputs={"validation": "evaluate", "weights": "evaluate"},
                    accept_parameters={"senders": ["learner"]}, outputs={"validation": "results"},
                    sentinel={"parameters": "weights", "every_s": every_s})
    return learner, sentinel


def test_the_sentinel_scores_each_published_version_of_the_learner_on_its_validation_set():
    bus = MemoryBus()
    learner, sentinel = learner_and_sentinel(bus, every_steps=3)
    validation = blobs(30, seed=5)
    learner.run()                                                            # publishes at steps 3, 6, 9 and 10 (stop)
    send(bus, "validation", *validation, per_message=10)
    bus.publish("validation", end_marker("producer"))
    status = sentinel.run()
    assert [result["model_version"] for result in status["validation"]] == [3, 6, 9, 10]
    assert status["evaluations"] == 4 and status["validation_rows"] == 30 and status["state"] == "stopped"
    final = learner.model.evaluate(*validation)
    assert status["validation"][-1]["accuracy"] == pytest.approx(final["accuracy"])
    assert status["validation"][-1]["loss"] == pytest.approx(final["loss"], rel=1e-6)
    published = [decode(record.value) for record in bus.read("results")]
    assert [(m.meta["op"], m.model_version) for m in published] == [(VALIDATION, 3), (VALIDATION, 6), (VALIDATION, 9),
                                                                     (VALIDATION, 10)]


def test_weights_that_arrive_before_the_validation_set_is_whole_wait_and_only_the_newest_is_scored():
    bus = MemoryBus()
    learner, sentinel = learner_and_sentinel(bus, every_steps=5)
    learner.run()                                                            # versions 5 and 10 (twice: at 10 and at stop)
    validation = blobs(20, seed=5)
    bus.publish("validation", features_envelope("producer", *validation))
    sentinel.open()
    while sentinel.stats.handled < 5:                                        # every weights message, the validation rows
        sentinel.poll(timeout_s=0.0)
    assert sentinel.evaluations == 0 and sentinel.validation_rows == 20      # the set has not ended yet
    bus.publish("validation", end_marker("producer"))
    while not sentinel.stopping:
        sentinel.poll(timeout_s=0.0)
    sentinel.close()
    assert [r["model_version"] for r in sentinel.results] == [10] and sentinel.skipped == 2


def test_a_sentinel_with_every_s_scores_the_first_and_the_last_weights_and_skips_what_came_between():
    bus = MemoryBus()
    learner, sentinel = learner_and_sentinel(bus, every_steps=2, every_s=1e9)
    validation = blobs(20, seed=5)
    send(bus, "validation", *validation, per_message=20)
    bus.publish("validation", end_marker("producer"))
    learner.run()                                                            # versions 2, 4, 6, 8, 10 and 10 at stop
    status = sentinel.run()
    assert [r["model_version"] for r in status["validation"]] == [2, 10] and status["skipped"] == 4


@pytest.mark.parametrize("overrides, message", [
    ({"sentinel": {"parameters": "weights"}, "inputs": {"validation": "evaluate"}, "accept_parameters": {}},
     "list that topic in inputs"),
    ({"sentinel": {"parameters": "weights"}, "inputs": {"weights": "evaluate", "data": "train"}, "accept_parameters": {}},
     "only evaluates"),
    ({"sentinel": {"parameters": "weights"}, "inputs": {"weights": "evaluate"}}, "set accept_parameters"),
    ({"distill": {"alpha": 1.5}}, "alpha"),
    ({"outputs": {"validation": "bad topic"}}, "topic name"),
])
def test_a_sentinel_or_student_config_that_cannot_work_is_refused_with_the_fix(overrides, message):
    with pytest.raises(ValidationError, match=message):
        ActorConfig.model_validate({"model": MODEL, **overrides})


def test_a_producer_sending_a_range_of_its_training_records_holds_out_the_same_records():
    records = [f'{{"features": [{i}], "label": 0}}' for i in range(50)]
    sent = {}
    for train_range in (None, (0, 7), (7, 40), (0, 0)):
        bus = MemoryBus()
        result = produce(bus, "t", records, "json", records_per_message=100, holdout_fraction=0.2, seed=3,
                         train_range=train_range)
        messages = [decode(record.value) for record in bus.read("t")]
        sent[train_range] = [tuple(record_texts(message)) for message in messages if message.kind == "raw"]
        assert result.records == {None: 40, (0, 7): 7, (7, 40): 33, (0, 0): 0}[train_range]
        assert result.holdout_records == 10 and messages[-2].meta["split"] == "holdout"
    assert sent[None][-1] == sent[(0, 7)][-1] == sent[(7, 40)][-1] == sent[(0, 0)][0]   # the held-out records
    parts = [set(sent[key][0]) for key in (None, (0, 7), (7, 40))]
    assert parts[1] | parts[2] == parts[0] and not parts[1] & parts[2]             # two disjoint parts of the whole


def test_a_train_range_that_is_no_range_is_refused():
    from h3spark.config import ProducerConfig

    with pytest.raises(ValidationError, match="train_range is \\[start, stop\\]"):
        ProducerConfig.model_validate({"source": {"bundled": "digits"}, "topic": "t", "train_range": [5, 2]})
