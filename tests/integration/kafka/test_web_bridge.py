"""The web bridge on the real broker: a learner actor (a thread, over Kafka) trains on a stream, its reports
reach a page as curve points, and a digit the page sends as a raw record comes back as its prediction."""

from __future__ import annotations

import json
import secrets
import time

from websockets.sync.client import connect

from h3spark.config import H3SparkConfig
from h3spark.web import WebApp

TOKEN = "k" * 24
WAIT_S = 120.0


def receive(ws, kind: str, deadline: float) -> dict:
    while True:
        message = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
        if isinstance(message, str) and json.loads(message)["type"] == kind:
            return json.loads(message)


def test_a_page_follows_a_kafka_network_and_its_drawn_digit_is_answered(kafka_bootstrap, tmp_path):
    name = f"webk-{secrets.token_hex(3)}"
    learner = {"inputs": {f"{name}.raw": "train", f"{name}.draw": "predict"},
               "model": {"engine": "numpy", "mlp": {"input_shape": [64], "hidden": [16], "classes": 10}},
               "training": {"optimizer": "adam", "lr": 0.01, "batch_size": 32},
               "pipeline": {"steps": [{"kind": "image", "columns": ["features"], "shape": [64]}], "fit_rows": 64},
               "outputs": {"predictions": f"{name}.predictions"}, "stop_at_end": False}
    producer = {"source": {"bundled": "digits"}, "topic": f"{name}.raw", "records_per_message": 64, "epochs": 1,
                "holdout_fraction": 0.2, "seed": 1}
    config = H3SparkConfig.model_validate({
        "name": name, "actors": {"transport": "kafka", "bootstrap_servers": kafka_bootstrap, "launcher": "threads",
                                 "progress_s": 0.5, "producers": {"digits": producer}, "actors": {"learner": learner}},
        "web": {"port": 0, "predict_topic": f"{name}.draw"}})
    app = WebApp(config, str(tmp_path), token=TOKEN)
    app.start()
    try:
        with connect(app.server.url.replace("http://", "ws://") + "ws") as ws:
            ws.send(json.dumps({"type": "hello", "role": "viewer", "token": TOKEN}))
            deadline = time.monotonic() + WAIT_S
            assert receive(ws, "welcome", deadline)["predictors"] == ["learner"]
            update = receive(ws, "update", deadline)
            while not any(p["actor"] == "learner" and (p["step"] or 0) > 0 for p in update["points"]):
                update = receive(ws, "update", deadline)
            answer = None
            while answer is None:
                ws.send(json.dumps({"type": "predict", "id": "k", "pixels": [0.0] * 20 + [16.0] * 8 + [0.0] * 36}))
                try:
                    answer = receive(ws, "prediction", min(deadline, time.monotonic() + 5))
                except TimeoutError:
                    assert time.monotonic() < deadline, "no answer from the learner over Kafka"
            assert answer["actor"] == "learner" and answer["id"] == "k" and len(answer["probabilities"]) == 10
    finally:
        app.stop()
