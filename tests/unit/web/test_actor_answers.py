"""What the bridge needs from an actor: a drawn digit (one raw record, no label, asking for a reply) goes
through the actor's own pipeline and comes back as predictions carrying the record's message id."""

from __future__ import annotations

import json

import numpy as np

from h3spark.actors import Actor, MemoryBus, raw_envelope
from h3spark.config import ActorConfig
from h3spark.web import ActorBridge
from h3spark.web._dataset import rows_table


def predictor(bus, tmp_path) -> Actor:
    """An actor predicting on 'draw' with a pipeline fitted beforehand (pixels 0..16 to 0..1)."""
    from h3spark.preprocess import Pipeline, preprocessor_for
    from h3spark.config import PreprocessStep
    from pydantic import TypeAdapter

    step = TypeAdapter(PreprocessStep).validate_python({"kind": "image", "columns": ["features"], "shape": [4]})
    pipeline = Pipeline([preprocessor_for(step)])
    pipeline.fit(rows_table(np.array([[0, 16, 8, 4], [16, 0, 0, 2]], np.float32), np.array([0, 1])))
    (tmp_path / "pipeline.json").write_text(pipeline.to_json())
    config = ActorConfig.model_validate({
        "inputs": {"draw": "predict"}, "outputs": {"predictions": "answers"},
        "model": {"mlp": {"input_shape": [4], "hidden": [3], "classes": 2}},
        "pipeline": {"file": str(tmp_path / "pipeline.json")}})
    actor = Actor.from_config("learner", config, bus, workdir=str(tmp_path), network="net")
    actor.open()
    return actor


def answers(bus) -> list:
    return [message for message in (decode(record) for record in bus.read("answers")) if message.kind == "predictions"]


def decode(record):
    from h3spark.actors import decode as decode_envelope

    return decode_envelope(record.value)


def test_an_unlabelled_record_asking_for_a_reply_is_predicted_and_answered_by_its_id(tmp_path):
    bus = MemoryBus()
    actor = predictor(bus, tmp_path)
    request_id = ActorBridge(bus, "net", predict_topic="draw").request_prediction(np.array([16, 0, 0, 16]))
    actor.poll(timeout_s=1.0)
    [answer] = answers(bus)
    assert answer.meta["request_id"] == request_id and answer.arrays["probabilities"].shape == (1, 2)
    assert actor.status()["quarantined"] == 0 and actor.status()["rows_predicted"] == 1
    actor.close()


def test_a_record_that_asks_no_reply_gets_predictions_without_a_request_id(tmp_path):
    bus = MemoryBus()
    actor = predictor(bus, tmp_path)
    bus.publish("draw", raw_envelope("producer", [json.dumps({"features": [1, 2, 3, 4], "label": 1})], "json"))
    actor.poll(timeout_s=1.0)
    [answer] = answers(bus)
    assert "request_id" not in answer.meta and actor.status()["predicted"]["rows"] == 1  # labelled: scored as before
    actor.close()
