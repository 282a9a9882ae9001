"""conf/web_digits.yaml (the README's one command) serves its network's page and its master."""

from __future__ import annotations

import json
from pathlib import Path

from websockets.sync.client import connect

from h3spark.config import load_config
from h3spark.web import WebApp

CONF = Path(__file__).resolve().parents[3] / "conf" / "web_digits.yaml"


def test_the_example_config_serves_its_network_and_master(tmp_path):
    config = load_config(CONF)
    assert config.web.host == "127.0.0.1" and config.web.port == 8765
    config = config.model_copy(update={"web": config.web.model_copy(update={"port": 0})})
    app = WebApp(config, str(tmp_path), token="c" * 24)
    app.start()
    try:
        with connect(app.server.url.replace("http://", "ws://") + "ws") as ws:
            ws.send(json.dumps({"type": "hello", "role": "viewer"}))
            welcome = json.loads(ws.recv(timeout=30))
        assert welcome["predictors"] == ["learner", "small", "downpour"]
        assert welcome["graph"]["producers"] == {"digits": {"topic": "digits.raw"}}
        assert welcome["downpour"]["settings"]["optimizer"] == "dcasgd" and welcome["downpour"]["shards"] == 3
        assert sorted(app.network.members) == ["learner", "small"]
    finally:
        app.stop()
