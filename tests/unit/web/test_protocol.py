"""The bridge's protocol with a plain WebSocket client (no browser), against a running bridge whose network
(one learner actor on the in-process bus, fed by a producer) and Downpour master run in this process."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import time
import urllib.request

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from h3spark.config import H3SparkConfig
from h3spark.train.engines.numpy_model import NumpyModel
from h3spark.web import DATA, EXAMPLES, GRADIENTS, WEIGHTS, WebApp, decode_frame, encode_frame, static_files

TOKEN = "t" * 24
WAIT_S = 30.0  # an upper bound for what arrives from other threads; no test depends on how fast


def app_config(**web) -> H3SparkConfig:
    learner = {"inputs": {"digits.raw": "train", "web.draw": "predict"},
               "model": {"engine": "numpy", "mlp": {"input_shape": [64], "hidden": [16], "classes": 10}},
               "training": {"optimizer": "adam", "lr": 0.01, "batch_size": 32},
               "pipeline": {"steps": [{"kind": "image", "columns": ["features"], "shape": [64]}], "fit_rows": 64},
               "outputs": {"predictions": "web.predictions"}, "stop_at_end": False}
    producer = {"source": {"bundled": "digits"}, "topic": "digits.raw", "records_per_message": 64, "epochs": 1,
                "holdout_fraction": 0.2, "seed": 1}
    return H3SparkConfig.model_validate({
        "name": "webtest", "actors": {"transport": "memory", "progress_s": 0.2, "producers": {"digits": producer},
                                      "actors": {"learner": learner}},
        "web": {"port": 0, "max_message_bytes": 65536, "downpour": {"data": {"shards": 2}}, **web}})


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = WebApp(app_config(), str(tmp_path_factory.mktemp("web")), token=TOKEN)
    app.start()
    yield app
    app.stop()


OPEN = contextlib.ExitStack()  # client connections of the running test, closed after it


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    OPEN.close()


def open_ws(app, **connect_options):
    return OPEN.enter_context(connect(ws_url(app), **connect_options))


def ws_url(app) -> str:
    return app.server.url.replace("http://", "ws://") + "ws"


def receive(ws, kind: str, timeout_s: float = WAIT_S):
    """The next message of ``kind`` (a text type, or "binary"), skipping updates and others."""
    deadline = time.monotonic() + timeout_s
    while True:
        message = ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
        if kind == "binary" and isinstance(message, bytes):
            return message
        if isinstance(message, str) and json.loads(message)["type"] == kind:
            return json.loads(message)


def hello(app, role: str = "viewer", token: str | None = None, **connect_options):
    ws = open_ws(app, **connect_options)
    ws.send(json.dumps({"type": "hello", "role": role, **({"token": token} if token else {})}))
    return ws, receive(ws, "welcome")


def error_for(ws, message) -> dict:
    ws.send(message if isinstance(message, (bytes, str)) else json.dumps(message))
    return receive(ws, "error")


def get(app, path: str, host: str | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", app.server.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host} if host else {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# --- pages, hosts and origins ---------------------------------------------------------------------

def test_the_pages_come_from_the_bridge_under_a_strict_policy_and_nothing_from_outside(app):
    status, headers, body = get(app, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"static/app.js" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    assert get(app, "/static/mlp.js")[1]["Content-Type"].startswith("text/javascript")
    assert get(app, "/worker")[0] == 200 and get(app, "/healthz")[2] == b"ok\n" and get(app, "/etc/passwd")[0] == 404
    with urllib.request.urlopen(app.server.url + "static/style.css", timeout=10) as response:
        assert response.status == 200
    for path, content in static_files().items():  # no CDN, no font or script from elsewhere
        assert b"http://" not in content and b"https://" not in content and b"//cdn" not in content, path


def test_a_request_for_another_host_is_refused(app):
    status, _, body = get(app, "/", host=f"rebound.example:{app.server.port}")
    assert status == 421 and b"add its origin to web.allowed_origins" in body


def test_a_websocket_from_another_origin_is_refused_and_the_bridges_own_is_taken(app):
    with pytest.raises(InvalidStatus) as refused:
        open_ws(app, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    for origin in (f"http://127.0.0.1:{app.server.port}", f"http://localhost:{app.server.port}", None):
        ws, welcome = hello(app, origin=origin)
        assert welcome["network"] == "webtest"
        ws.close()


# --- the token ------------------------------------------------------------------------------------

def test_without_the_token_a_page_reads_and_every_write_is_refused(app):
    ws, welcome = hello(app)
    assert welcome["authenticated"] is False and welcome["predictors"] == ["learner", "downpour"]
    assert welcome["graph"]["actors"]["learner"]["inputs"] == {"digits.raw": "train", "web.draw": "predict"}
    assert welcome["downpour"]["layout"][0] == {"name": "hidden0.weight", "shape": [64, 64], "offset": 0}
    version = app.master.version
    for write in ({"type": "predict", "id": "a", "pixels": [0] * 64}, {"type": "join"},
                  {"type": "set", "settings": {"lr": 9.0}}, {"type": "reset", "mean": 0, "std": 1}):
        error = error_for(ws, write)
        assert error["code"] == "unauthorized" and error["ref"] == write["type"] and "needs the token" in error["message"]
    assert error_for(ws, encode_frame(GRADIENTS, np.ones(4)))["code"] == "unauthorized"
    assert app.master.hyper.lr != 9.0 and app.master.version == version
    ws.send(json.dumps({"type": "hello", "role": "viewer", "token": TOKEN}))
    assert receive(ws, "welcome")["authenticated"] is True  # the same connection, now with the token
    ws.close()


def test_a_wrong_token_gets_an_error_and_the_connection_is_closed(app):
    ws = open_ws(app)
    error = error_for(ws, {"type": "hello", "role": "worker", "token": "x" * 24})
    assert error["code"] == "unauthorized"
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT_S)
    assert closed.value.rcvd.code == 1008


# --- malformed input --------------------------------------------------------------------------------

@pytest.mark.parametrize("message, code", [
    ("not json", "bad_message"), ("[1, 2]", "bad_message"), ('{"type": "teleport"}', "unknown_type"),
    ({"type": "predict", "id": "p", "pixels": [0] * 63}, "bad_message"),
    ('{"type": "predict", "id": "p", "pixels": [NaN' + ", 0" * 63 + "]}", "bad_message"),
    ({"type": "predict", "id": "p", "pixels": [1e9] * 64}, "bad_message"),
    ({"type": "set", "settings": {"lr": -1}}, "bad_request"), ({"type": "set", "settings": 3}, "bad_message"),
    ({"type": "join", "settings": {"batch_size": 0}}, "bad_request"), ({"type": "pull"}, "not_joined"),
    (b"\x00" * 40, "not_joined"), (encode_frame(GRADIENTS, np.ones(3)), "not_joined"),
    ({"type": "hello", "role": "admin"}, "bad_message"),
], ids=["text", "array", "type", "63 pixels", "nan", "range", "lr", "settings", "batch", "pull", "junk", "early push",
        "role"])
def test_a_malformed_message_gets_an_error_frame_and_the_connection_goes_on(app, message, code):
    ws, _ = hello(app, token=TOKEN)
    assert error_for(ws, message)["code"] == code
    ws.send(json.dumps({"type": "predict", "id": "after", "pixels": [0] * 64}))
    assert receive(ws, "prediction")["id"] == "after"  # still served
    ws.close()


def test_a_message_before_hello_is_refused(app):
    ws = open_ws(app)
    assert error_for(ws, {"type": "predict", "id": "p", "pixels": [0] * 64})["code"] == "no_hello"
    ws.close()


def test_a_message_over_the_size_limit_closes_only_its_connection(app):
    ws, _ = hello(app, token=TOKEN)
    ws.send(b"\x00" * (65536 + 1))
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=WAIT_S)
    assert closed.value.sent is None or closed.value.rcvd.code == 1009
    other, welcome = hello(app)
    assert welcome["type"] == "welcome"
    other.close()


def test_messages_over_the_rate_are_refused_per_connection(tmp_path):
    config = app_config(max_messages_per_s=0.001, burst=3, network="none", downpour=None)
    app = WebApp(config, str(tmp_path), token=TOKEN)
    app.serve()
    try:
        ws = open_ws(app)
        for _ in range(5):
            ws.send(json.dumps({"type": "hello", "role": "viewer"}))
        answers = [json.loads(ws.recv(timeout=WAIT_S)) for _ in range(5)]
        assert [a["type"] for a in answers] == ["welcome"] * 3 + ["error"] * 2
        assert answers[-1]["code"] == "rate_limited"
        assert hello(app)[1]["type"] == "welcome"  # another connection has its own bucket
    finally:
        app.stop()


def test_a_bridge_without_a_master_says_so_to_a_worker(tmp_path):
    app = WebApp(app_config(network="none", downpour=None), str(tmp_path), token=TOKEN)
    app.serve()
    try:
        ws, welcome = hello(app, role="worker", token=TOKEN)
        assert welcome["downpour"] is None and welcome["predictors"] == []
        assert error_for(ws, {"type": "join"})["code"] == "no_master"
        assert error_for(ws, {"type": "set", "settings": {"lr": 0.1}})["code"] == "no_master"
    finally:
        app.stop()


# --- Downpour over the wire --------------------------------------------------------------------------

def join(app, **settings):
    ws, welcome = hello(app, role="worker", token=TOKEN)
    ws.send(json.dumps({"type": "join", "settings": settings}))
    joined = receive(ws, "joined")
    data = decode_frame(receive(ws, "binary"), 0, welcome["downpour"]["features"])
    weights = decode_frame(receive(ws, "binary"), welcome["downpour"]["parameters"])
    return ws, joined, data, weights


def test_a_worker_gets_its_shard_and_the_weights_and_its_pushes_are_applied(app):
    ws, joined, data, weights = join(app, batch_size=8)
    master = app.master
    assert joined["settings"]["batch_size"] == 8 and joined["rows"] == data.rows == len(master.data.shard(joined["shard"])[1])
    assert data.kind == DATA and 0 <= data.values.min() and data.values.max() <= 1  # through the master's pipeline
    assert weights.kind == WEIGHTS and weights.version == master.version
    replica = NumpyModel(master.spec)
    replica.set_weights(master.layout.unflatten(np.array(weights.values)))
    _, grads = replica.gradients(data.values[:8], data.labels[:8])
    frame = encode_frame(GRADIENTS, master.layout.flatten(grads), version=weights.version, steps=1, rows=8)
    ws.send(frame)
    ack = receive(ws, "ack")
    assert ack["applied"] is True and ack["delay"] >= 0 and ack["version"] > weights.version
    ws.send(frame)  # the same gradient again: now at least one update old, compensated
    assert receive(ws, "ack")["delay"] >= 1
    ws.send(json.dumps({"type": "pull"}))
    assert decode_frame(receive(ws, "binary"), master.layout.size).version == master.version
    for junk in (b"\x00" * 40, encode_frame(GRADIENTS, np.ones(3)), encode_frame(WEIGHTS, weights.values)):
        assert error_for(ws, junk)["code"] == "bad_frame"
    assert joined["worker"] in master.workers
    ws.close()


def test_a_users_raw_examples_come_back_through_the_masters_pipeline(app):
    ws, *_ = join(app)
    raw = np.array([[16.0] * 64, [8.0] * 64], np.float32)
    ws.send(encode_frame(EXAMPLES, raw, rows=2, labels=np.array([3, 4])))
    assert receive(ws, "examples") == {"type": "examples", "kept": 2, "refused": []}
    data = decode_frame(receive(ws, "binary"), 0, 64)
    assert np.allclose(data.values, raw / 16) and data.labels.tolist() == [3, 4]
    assert error_for(ws, encode_frame(EXAMPLES, raw[:1], rows=1, labels=np.array([10])))["code"] == "bad_frame"
    ws.close()


def test_a_worker_that_leaves_is_forgotten_and_frees_its_shard(app):
    ws, joined, *_ = join(app)
    assert joined["worker"] in app.master.workers
    ws.close()
    deadline = time.monotonic() + WAIT_S
    while joined["worker"] in app.master.workers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert joined["worker"] not in app.master.workers


# --- the network ---------------------------------------------------------------------------------------

def test_a_drawn_digit_is_answered_by_the_predicting_actor_and_the_master(app):
    ws, _ = hello(app, token=TOKEN)
    pixels = [float(v) for v in app.master.data.shard(0)[0][0] * 16]
    answers = {}
    deadline = time.monotonic() + WAIT_S
    while set(answers) != {"learner", "downpour"} and time.monotonic() < deadline:
        ws.send(json.dumps({"type": "predict", "id": f"d{len(answers)}", "pixels": pixels}))
        try:  # the learner answers once its pipeline is fitted on the stream's first records
            while True:
                answer = receive(ws, "prediction", timeout_s=1.0)
                answers[answer["actor"]] = answer
        except TimeoutError:
            pass
    assert set(answers) == {"learner", "downpour"}
    for answer in answers.values():
        assert len(answer["probabilities"]) == 10 and math.isclose(sum(answer["probabilities"]), 1, abs_tol=1e-4)
        assert answer["label"] == int(np.argmax(answer["probabilities"])) and answer["ms"] >= 0
    ws.close()


def test_actor_reports_reach_a_page_as_curve_points_and_states(app):
    ws, _ = hello(app)
    update = receive(ws, "update")
    while not any(point["actor"] == "learner" for point in update["points"]):
        update = receive(ws, "update")
    point = next(point for point in update["points"] if point["actor"] == "learner")
    assert set(point) >= {"t", "step", "loss", "accuracy", "kind"} and point["kind"] == "report"
    ws.close()


def test_settings_a_page_changes_reach_the_master_and_the_other_pages(app):
    watcher, _ = hello(app)
    ws, _ = hello(app, token=TOKEN)
    ws.send(json.dumps({"type": "set", "settings": {"weight_decay": 0.001}}))
    update = receive(watcher, "update")
    while "settings" not in update:
        update = receive(watcher, "update")
    assert update["settings"]["weight_decay"] == 0.001 == app.master.hyper.weight_decay
    app.master.set({"weight_decay": 0.0})
    ws.close()
    watcher.close()


def test_replies_are_not_held_back_by_nagles_algorithm(app):
    """asyncio leaves Nagle's algorithm on for sockets accepted from socket.create_server's listener (proto 0),
    so a reply sent right after another waited for the page's delayed ACK (about 40 ms)."""
    import socket

    ws, _ = hello(app)
    [session] = [s for s in app.server.hub.sessions if s.connection.remote_address == ws.socket.getsockname()]
    server_side = session.connection.transport.get_extra_info("socket")
    assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
