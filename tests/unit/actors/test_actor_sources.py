"""Where an actor's model, pipeline and records come from: saved models, experiments, checkpoints, snapshots,
pipelines from a file, producers' sources; and the minibatches cut from what arrives."""

import json
import threading

import numpy as np
import pyarrow as pa
import pytest

from h3spark.actors import MemoryBus, OnlineBatches, Snapshots, decode, produce, source_records
from h3spark.actors._intake import Intake
from h3spark.actors._models import actor_model, find_model_file
from h3spark.actors._records import arrow_batch, record_texts
from h3spark.config import ActorConfig
from h3spark.config._actors import ActorModelConfig, ActorTrainingConfig, ProducerSourceConfig
from h3spark.errors import DataError
from h3spark.preprocess import Assemble, Pipeline, StandardScale
from h3spark.train.engines.model import build_model
from h3spark.train.engines.spec import mlp_spec

TRAINING = ActorTrainingConfig()


def saved_model(path, seed=3):
    model = build_model("numpy", mlp_spec([4], [8], 2), seed=seed)
    model.step = 12
    model.save(str(path))
    return model


def load(tmp_path, **source):
    return actor_model(ActorModelConfig(**source), TRAINING, str(tmp_path))


def same_weights(a, b) -> bool:
    return all(np.array_equal(a.get_weights()[name], value) for name, value in b.get_weights().items())


def test_a_model_loads_from_a_file_an_experiments_best_model_or_a_checkpoint_folder(tmp_path):
    model = saved_model(tmp_path / "m.safetensors")
    (tmp_path / "exp" / "best_model").mkdir(parents=True)
    saved_model(tmp_path / "exp" / "best_model" / "model.safetensors")
    for source in ({"file": "m.safetensors"}, {"experiment": "exp"}, {"checkpoint": "exp/best_model"}):
        loaded = load(tmp_path, **source)
        assert loaded.step == 12 and same_weights(loaded, model) and loaded.options.optimizer == "adam"


def test_a_checkpoint_of_actor_snapshots_gives_the_newest_step(tmp_path):
    snapshots = Snapshots(f"file://{tmp_path}/snaps", keep=3)
    model = build_model("numpy", mlp_spec([4], [8], 2), seed=0)
    for step in (5, 10):
        model.step = step
        snapshots.save(model, {})
    assert find_model_file(f"file://{tmp_path}/snaps").endswith("step-00000010/model.safetensors")
    assert load(tmp_path, checkpoint="snaps").step == 10
    (tmp_path / "snaps" / ".tmp-dead").mkdir()                       # left by a writer killed mid-snapshot
    model.step = 15
    snapshots.save(model, {})
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == ["step-00000005", "step-00000010",
                                                                      "step-00000015"]


def test_a_checkpoint_root_of_a_training_run_gives_its_newest_published_checkpoint(tmp_path):
    from h3spark.train._checkpoint import CheckpointWriter

    model = build_model("numpy", mlp_spec([4], [8], 2), seed=0)
    writer = CheckpointWriter(f"file://{tmp_path}/checkpoints", run=1, settings={})
    for step in (40, 80):  # as h3spark train publishes them: run-R/step-N/_versions/V/model.safetensors
        model.step = step
        model.save(str(tmp_path / "m.safetensors"))
        writer.save(step, {"model.safetensors": (tmp_path / "m.safetensors").read_bytes()}, {})
    assert find_model_file(f"file://{tmp_path}/checkpoints").endswith(
        "run-0001/step-00000080/_versions/00000001/model.safetensors")
    assert load(tmp_path, checkpoint="checkpoints").step == 80


def test_a_spec_builds_the_model_and_missing_or_foreign_files_are_named(tmp_path):
    spec = {"input_shape": [4], "layers": [{"type": "dense", "name": "out", "units": 3}]}
    assert load(tmp_path, spec=spec).spec.classes == 3
    with pytest.raises(DataError, match="no model at .*nowhere: nothing is there"):
        load(tmp_path, checkpoint="nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "weights.safetensors").write_bytes(b"not a model")
    with pytest.raises(DataError, match="found no model saved by Model.save"):
        load(tmp_path, checkpoint="empty")


def test_an_actor_pipeline_loads_a_fitted_pipeline_from_its_json_file(tmp_path):
    table = pa.table({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 5.0], "label": [0, 1, 1]})
    pipeline = Pipeline([StandardScale(["a", "b"]), Assemble(["a", "b"])]).fit(table)
    (tmp_path / "pipeline.json").write_text(pipeline.to_json())
    config = ActorConfig.model_validate({"model": {"mlp": {"input_shape": [2], "classes": 2}},
                                         "pipeline": {"file": "pipeline.json"}})
    intake = Intake.from_config(config, str(tmp_path), None)
    assert intake.fitted
    [(out, tag)] = intake.push(table, "train")
    assert tag == "train" and np.allclose(np.asarray(out.column("features").combine_chunks().flatten()),
                                          np.asarray(pipeline.transform(table).table.column("features")
                                                     .combine_chunks().flatten()))


def test_a_producer_sends_epochs_then_the_held_out_records_then_an_end_marker():
    bus = MemoryBus()
    records = [json.dumps({"x": i}) for i in range(10)]
    result = produce(bus, "t", records, "json", records_per_message=4, epochs=2, holdout_fraction=0.2, seed=1)
    messages = [decode(record.value) for record in bus.read("t")]
    assert (result.records, result.holdout_records, result.messages) == (16, 2, 5)
    assert [m.meta.get("epoch", m.meta.get("split", m.meta.get("op"))) for m in messages] == [0, 0, 1, 1, "holdout",
                                                                                               "end"]
    train = [text for m in messages if m.meta.get("epoch") == 0 for text in record_texts(m)]
    held = [text for m in messages if m.meta.get("split") == "holdout" for text in record_texts(m)]
    assert sorted(train + held) == sorted(records) and not set(train) & set(held)


def test_a_producer_asked_to_stop_sends_no_end_marker():
    bus, stop = MemoryBus(), threading.Event()
    stop.set()
    result = produce(bus, "t", ["{}"] * 5, "json", stop=stop)
    assert result.stopped_early and result.messages == 0 and bus.read("t") == []


def test_producer_sources_render_bundled_data_as_csv_or_json_and_read_files(tmp_path):
    lines, columns = source_records(ProducerSourceConfig(bundled="iris"), "csv", str(tmp_path))
    assert len(lines) == 150 and len(columns) == 5 and columns[-1] == "label" and lines[0].count(",") == 4
    lines, columns = source_records(ProducerSourceConfig(bundled="iris"), "json", str(tmp_path))
    assert columns is None and json.loads(lines[0])["label"] == 0 and len(json.loads(lines[0])["features"]) == 4
    (tmp_path / "r.csv").write_text("a,b\n1,2\n\n3,4\n")
    assert source_records(ProducerSourceConfig(path="r.csv"), "csv", str(tmp_path)) == (["1,2", "3,4"], ["a", "b"])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty; a CSV source needs a header"):
        source_records(ProducerSourceConfig(path="empty.csv"), "csv", str(tmp_path))


def test_online_batches_are_fixed_size_in_arrival_order_and_the_rest_comes_at_the_end():
    batches = OnlineBatches(batch_size=4, feature_shape=(2,))
    rows = np.arange(22, dtype=np.float32).reshape(11, 2)
    batches.push(arrow_batch(rows[:3], np.arange(3)))
    assert list(batches.ready()) == [] and batches.rows == 3
    batches.push(arrow_batch(rows[3:10], np.arange(3, 10)))
    got = list(batches.ready())
    assert [batch.labels.tolist() for batch in got] == [[0, 1, 2, 3], [4, 5, 6, 7]] and batches.rows == 2
    batches.push(arrow_batch(rows[10:], np.arange(10, 11)))
    assert [batch.labels.tolist() for batch in batches.ready(final=True)] == [[8, 9, 10]] and batches.rows == 0
    batches.push(arrow_batch(rows[:4], np.arange(4)))               # it goes on after a final flush
    assert [batch.features.tolist() for batch in batches.ready()] == [rows[:4].tolist()]
