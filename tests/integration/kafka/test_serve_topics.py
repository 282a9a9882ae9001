"""Predictions over Kafka request and reply topics: the responder in this process, and 'h3spark serve --kafka'
as a process, answering clients on the real broker, correlated by message id."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from h3spark.actors import KafkaTransport
from h3spark.serve import PredictionResponder, ReplyWaiter, find_model, send_request


@pytest.fixture
def model_path(tmp_path) -> str:
    from h3spark.train.engines.model import build_model
    from h3spark.train.engines.spec import mlp_spec

    return build_model("numpy", mlp_spec([64], [16], 10), seed=5).save(str(tmp_path / "model.safetensors"))


@pytest.fixture
def topics():
    tag = uuid.uuid4().hex[:10]
    return f"serve-{tag}.requests", f"serve-{tag}.replies"


def test_two_clients_get_their_own_replies_from_a_responder(kafka_bootstrap, model_path, topics):
    requests, replies = topics
    model = find_model(model_path).load()
    server_side = KafkaTransport(kafka_bootstrap)
    clients = KafkaTransport(kafka_bootstrap)
    stop = threading.Event()
    responder = PredictionResponder(server_side, model, "digits", requests, replies).start()
    thread = threading.Thread(target=responder.run, args=(stop,), daemon=True)
    thread.start()
    try:
        waiter = ReplyWaiter(clients, replies)
        batches = {sender: np.random.default_rng(index).random((index + 2, 64), dtype=np.float32)
                   for index, sender in enumerate(["client-a", "client-b"])}
        sent = {send_request(clients, requests, batch, sender): batch for sender, batch in batches.items()}
        wrong = send_request(clients, requests, np.zeros((1, 3)), "client-a")
        for request_id, batch in sent.items():
            reply = waiter.wait(request_id, timeout_s=60)
            assert reply.meta["request_id"] == request_id and reply.computed_with == model.version
            assert np.allclose(reply.arrays["probabilities"], model.predict(batch))
        assert "takes [-1, 64]" in waiter.wait(wrong, timeout_s=60).meta["error"]
        waiter.close()
    finally:
        stop.set()
        thread.join(30)
        server_side.close()
        clients.close()
    assert responder.answered == 2 and responder.refused == 1
    assert not thread.is_alive()


def test_the_serve_command_answers_on_the_broker(kafka_bootstrap, model_path, topics):
    requests, replies = topics
    command = [str(Path(sys.executable).parent / "h3spark"), "serve", model_path, "--name", "digits", "--kafka", kafka_bootstrap,
               "--requests", requests, "--replies", replies]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    clients = KafkaTransport(kafka_bootstrap)
    try:
        waiter = ReplyWaiter(clients, replies)
        x = np.random.default_rng(9).random((4, 64), dtype=np.float32)
        reply = waiter.wait(send_request(clients, requests, x, "cli-client"), timeout_s=120)
        assert np.allclose(reply.arrays["probabilities"], find_model(model_path).load().predict(x))
        waiter.close()
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
        clients.close()
    assert f"requests {requests} -> replies {replies}" in out, err
