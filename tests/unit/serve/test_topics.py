"""Predictions over request and reply topics on the in-process bus (the same code runs on Kafka:
tests/integration/kafka/test_serve_topics.py)."""

from __future__ import annotations

import numpy as np

from h3spark.actors import Envelope, MemoryBus
from h3spark.serve import PredictionResponder, ReplyWaiter, send_request


def test_each_request_gets_its_predictions_correlated_by_message_id(served):
    bus = MemoryBus()
    responder = PredictionResponder(bus, served, "digits", "digits.requests", "digits.replies").start()
    replies = ReplyWaiter(bus, "digits.replies")
    batches = [np.random.default_rng(seed).random((count, 64), dtype=np.float32) for seed, count in ((0, 3), (1, 1))]
    ids = [send_request(bus, "digits.requests", batch, sender="client") for batch in batches]
    assert responder.poll(0.1) == 2
    for request_id, batch in reversed(list(zip(ids, batches))):
        reply = replies.wait(request_id, timeout_s=1.0)
        assert reply.kind == "predictions" and reply.sender == "digits" and reply.computed_with == 42
        assert reply.meta == {"request_id": request_id, "model": "digits"}
        assert np.allclose(reply.arrays["probabilities"], served.predict(batch))
        assert reply.arrays["label"].tolist() == served.predict(batch).argmax(axis=1).tolist()
    assert responder.answered == 2 and responder.refused == 0


def test_a_request_the_model_cannot_take_gets_a_reply_saying_why(served):
    bus = MemoryBus()
    responder = PredictionResponder(bus, served, "digits", "requests", "replies").start()
    replies = ReplyWaiter(bus, "replies")
    wrong = send_request(bus, "requests", np.zeros((2, 5)), sender="client")
    bus.publish("requests", Envelope("raw", "client", meta={"note": "not features"}))
    responder.poll(0.1)
    reply = replies.wait(wrong, timeout_s=1.0)
    assert reply.meta["error"] == "'features' has shape [2, 5]; model 'digits' takes [-1, 1, 8, 8] or [-1, 64]."
    assert dict(reply.arrays) == {}
    assert responder.refused == 2 and responder.answered == 0


def test_a_request_may_name_its_own_reply_topic(served):
    bus = MemoryBus()
    responder = PredictionResponder(bus, served, "digits", "requests", "replies").start()
    mine = ReplyWaiter(bus, "client-7.replies")
    request_id = send_request(bus, "requests", np.ones((1, 64)), sender="client-7", reply_to="client-7.replies")
    responder.poll(0.1)
    assert mine.wait(request_id, timeout_s=1.0).arrays["label"].shape == (1,)
    assert bus.read("replies") == []
