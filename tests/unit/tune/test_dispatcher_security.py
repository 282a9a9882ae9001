"""The experiments' dispatcher against clients that are not its slots, or slots that misbehave.

Each attack of issue 18 item 4 has its own test: a client without the token can neither
finish, take nor report a trial, nor hold a connection; a slot with the token cannot store
a malformed record, finish another slot's trial, hoard trials, or hold one forever.
"""

import json
import socket
import threading
import time

import pytest

from h3spark.tune._dispatcher import AUTH_LINE_BYTES, Dispatcher, _hang_up
from h3spark.tune._search import Trial
from h3spark.tune._stopping import StoppingRule


class _Recorder:
    def __init__(self):
        self.started, self.finished, self.reports = [], [], []


class _ManualGuard:
    """An auth guard that hangs up when the test fires it (unless cancelled), not after a time."""

    def __init__(self, sock):
        self.sock, self.cancelled = sock, threading.Event()

    def cancel(self):
        self.cancelled.set()

    def fire(self):
        if not self.cancelled.is_set():
            _hang_up(self.sock)


class _ManualGuards(Dispatcher):
    """A dispatcher whose auth timeouts the test triggers, so no test races a timer."""

    def __init__(self, *args, **kwargs):
        self.guards = []
        super().__init__(*args, **kwargs)

    def _auth_guard(self, sock):
        guard = _ManualGuard(sock)
        self.guards.append(guard)
        return guard


class _Client:
    """A raw JSON-lines client; ``ask`` returns the reply, or None when the driver hung up unanswered."""

    def __init__(self, address, token=None):
        self.token = token
        self.sock = socket.create_connection(address, timeout=10)
        self.reader = self.sock.makefile("rb")

    def ask(self, message):
        if isinstance(message, dict):
            message = {**message, "token": self.token} if self.token is not None else message
            message = json.dumps(message).encode() + b"\n"
        try:
            self.sock.sendall(message)
            line = self.reader.readline()
        except ConnectionError:
            return None
        return json.loads(line) if line else None

    def close(self):
        self.reader.close()
        self.sock.close()


@pytest.fixture
def served():
    """A dispatcher with one pending trial, its event recorder, and clients closed afterwards."""
    made = []

    def make(trials=1, cls=Dispatcher, **options):
        recorder = _Recorder()
        dispatcher = cls("127.0.0.1", lambda trial, slot: recorder.started.append(trial.trial_id),
                                lambda trial, record: recorder.finished.append(record), recorder.reports.append,
                                **options)
        dispatcher.submit([Trial(trial_id, {"x": trial_id}) for trial_id in range(trials)])
        made.append(dispatcher)
        return dispatcher, recorder

    def client(dispatcher, with_token=True):
        connection = _Client(dispatcher.address, getattr(dispatcher, "token", "") if with_token else None)
        clients.append(connection)
        return connection

    clients = []
    yield make, client
    for connection in clients:
        connection.close()
    for dispatcher in made:
        dispatcher.close()


def _result(trial_id=0, **fields):
    return {"trial_id": trial_id, "slot": 0, "status": "completed", "metrics": {"accuracy": 0.5},
            "started_at": time.time() - 1, "ended_at": time.time(), **fields}


def _wait_idle(dispatcher):
    deadline = time.monotonic() + 10
    while not dispatcher.wait_idle(0.05):
        assert time.monotonic() < deadline, "the dispatcher never became idle"


def _wait_for(condition):
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the expected records never came"
        time.sleep(0.01)


def test_a_client_without_the_token_cannot_inject_a_result(served):
    make, client = served
    dispatcher, recorder = make()
    assert client(dispatcher).ask({"op": "next", "slot": 0, "result": None})["trial"]["trial_id"] == 0
    forged = _result(metrics={"accuracy": 1e9})
    assert client(dispatcher, with_token=False).ask({"op": "next", "slot": 0, "result": forged}) is None
    assert recorder.finished == [] and dispatcher.running_ids() == [0]
    assert dispatcher.rejected == 1 and "without this experiment's token" in dispatcher.problems[0]


def test_a_client_with_a_wrong_token_is_refused_like_one_without(served):
    make, client = served
    dispatcher, recorder = make()
    intruder = client(dispatcher)
    intruder.token = "0" * 32
    assert intruder.ask({"op": "next", "slot": 0, "result": None}) is None
    assert recorder.started == [] and dispatcher.rejected == 1


def test_a_client_without_the_token_takes_no_trial(served):
    make, client = served
    dispatcher, recorder = make()
    assert client(dispatcher, with_token=False).ask({"op": "next", "slot": 0, "result": None}) is None
    assert recorder.started == []
    assert client(dispatcher).ask({"op": "next", "slot": 0, "result": None})["trial"]["trial_id"] == 0


def test_a_client_without_the_token_cannot_report_or_stop_a_trial(served):
    class Spy(StoppingRule):
        calls = []

        def observe(self, trial_id, step, score):
            self.calls.append((trial_id, step, score))
            return True

    make, client = served
    dispatcher, recorder = make(stopping=Spy())
    client(dispatcher).ask({"op": "next", "slot": 0, "result": None})
    report = {"op": "report", "trial_id": 0, "step": 1, "metrics": {"accuracy": -1.0}, "score": -1.0}
    assert client(dispatcher, with_token=False).ask(report) is None
    assert recorder.reports == [] and Spy.calls == []
    assert client(dispatcher).ask(report) == {"stop": True} and Spy.calls == [(0, 1, -1.0)]


def test_a_connection_that_says_nothing_is_closed_after_the_auth_timeout(served):
    make, client = served
    dispatcher, _ = make(auth_timeout_s=0.2)
    silent = client(dispatcher, with_token=False)
    silent.sock.sendall(b'{"op": "next", "slot": 0')  # half a line, then nothing
    assert silent.reader.readline() == b""  # the driver hung up (the socket's own timeout is 10 s)
    assert dispatcher.running_ids() == []


def test_an_authenticated_slot_may_wait_for_work_longer_than_the_auth_timeout(served):
    make, client = served
    dispatcher, _ = make(trials=0, cls=_ManualGuards)
    slot = client(dispatcher)
    assert slot.ask({"op": "renew", "slot": 0, "trial_id": 0}) == {"held": False}  # authenticated
    silent = client(dispatcher, with_token=False)
    _wait_for(lambda: len(dispatcher.guards) == 2)  # the silent connection is being served
    for guard in dispatcher.guards:  # the auth timeout of both connections is over
        guard.fire()
    assert silent.reader.readline() == b""  # the guard still ends a connection that never authenticated
    dispatcher.submit([Trial(0, {})])
    assert slot.ask({"op": "next", "slot": 0, "result": None})["trial"]["trial_id"] == 0


def test_a_first_message_longer_than_the_auth_limit_is_refused_unread(served):
    make, client = served
    dispatcher, recorder = make()
    client(dispatcher).ask({"op": "next", "slot": 0, "result": None})
    padded = {"op": "report", "trial_id": 0, "step": 1, "metrics": {"note": "x" * AUTH_LINE_BYTES}, "score": 1.0}
    assert client(dispatcher).ask(padded) is None  # the token is there, but the line is not read to its end
    assert recorder.reports == [] and dispatcher.rejected == 1
    assert f"a first message longer than {AUTH_LINE_BYTES} bytes from 127.0.0.1:" in dispatcher.problems[0]


def test_an_authenticated_connection_may_send_long_lines(served):
    make, client = served
    dispatcher, recorder = make(trials=2)
    slot = client(dispatcher)
    assert slot.ask({"op": "next", "slot": 0, "result": None})["trial"]["trial_id"] == 0
    traceback_text = "Traceback (most recent call last):\n" + "x" * (4 * AUTH_LINE_BYTES)
    reply = slot.ask({"op": "next", "slot": 0, "result": _result(status="failed", error=traceback_text)})
    assert reply["trial"]["trial_id"] == 1
    assert [record["error"] for record in recorder.finished] == [traceback_text] and dispatcher.rejected == 0


def test_a_trial_whose_slot_goes_silent_is_given_up_after_its_lease(served):
    make, client = served
    dispatcher, recorder = make(lease_s=0.2)
    slot = client(dispatcher)
    slot.ask({"op": "next", "slot": 0, "result": None})  # takes trial 0, then neither renews nor answers
    _wait_idle(dispatcher)
    [record] = recorder.finished
    assert record["status"] == "failed" and "did not renew its lease on this trial within lease_s=0.2" in record["error"]
    assert slot.ask({"op": "renew", "slot": 0, "trial_id": 0}) == {"held": False}


def test_a_renewed_trial_held_past_its_timeout_is_given_up(served):
    make, client = served
    dispatcher, recorder = make(timeout_s=0.1, timeout_grace_s=0.1)
    slot = client(dispatcher)
    slot.ask({"op": "next", "slot": 0, "result": None})
    assert slot.ask({"op": "renew", "slot": 0, "trial_id": 0}) == {"held": True}
    _wait_idle(dispatcher)
    [record] = recorder.finished
    assert record["status"] == "timeout" and "past timeout_s=0.1 plus 0.1 s" in record["error"]


@pytest.mark.parametrize("result, expected", [
    (_result(started_at="yesterday"), "result.started_at: Input should be a valid number (got 'yesterday')"),
    (_result(ended_at=-5.0), "result.ended_at: Input should be greater than or equal to 0"),
    (_result(trial_id=0.0), "result.trial_id: Input should be a valid integer"),
    (_result(status="won"), "result.status: Input should be 'completed', 'stopped', 'failed' or 'timeout'"),
    (_result(metrics=[1, 2]), "result.metrics: Input should be a valid dictionary"),
    (_result(logdir="/etc"), "result.logdir: Extra inputs are not permitted"),
    (_result(model="model/../../../etc"), "result.model: Value error, must be a relative path under the trial's model/"),
    (_result(gpus=[0]), "result.gpus.0: Input should be a valid string"),
])
def test_a_malformed_result_is_refused_and_the_trial_recorded_by_the_driver(served, result, expected):
    make, client = served
    dispatcher, recorder = make()
    slot = client(dispatcher)
    slot.ask({"op": "next", "slot": 0, "result": None})
    reply = slot.ask({"op": "next", "slot": 0, "result": result})
    assert expected in reply["error"]
    assert slot.reader.readline() == b""  # and the connection is ended
    _wait_idle(dispatcher)
    [record] = recorder.finished
    assert set(record) == {"trial_id", "status", "slot", "error", "ended_at"}  # the driver's own record, nothing of theirs
    assert record["status"] == "failed" and expected in record["error"]
    assert dispatcher.rejected == 1 and expected in dispatcher.problems[0]


@pytest.mark.parametrize("line, expected", [
    (b'{"op": "report", "trial_id": 0, "step": 1, "metrics": {"a": NaN}, "score": 1.0, "token": "%s"}\n', None),
    (b'{"op": "report", "trial_id": 0, "step": 1, "metrics": {}, "score": "high", "token": "%s"}\n',
     "score: Input should be a valid number (got 'high')"),
    (b'{"op": "report", "trial_id": 0, "step": "1", "metrics": {}, "token": "%s"}\n', "step: Input should be a valid integer"),
    (b'{"op": "delete", "token": "%s"}\n', "unknown op 'delete'; expected one of next, renew, report"),
    (b'["op", "next", "%s"]\n', None),
])
def test_a_malformed_report_or_op_stores_nothing(served, line, expected):
    make, client = served
    dispatcher, recorder = make()
    client(dispatcher).ask({"op": "next", "slot": 0, "result": None})
    reply = client(dispatcher, with_token=False).ask(line.replace(b"%s", dispatcher.token.encode()))
    assert reply is None if expected is None else expected in reply["error"]  # not JSON as the wire allows: no answer
    assert recorder.reports == [] and dispatcher.rejected == 1


def test_a_slot_finishes_only_its_own_trial_and_holds_one_at_a_time(served):
    make, client = served
    dispatcher, recorder = make(trials=3)
    first, second = client(dispatcher), client(dispatcher)
    assert first.ask({"op": "next", "slot": 0, "result": None})["trial"]["trial_id"] == 0
    assert second.ask({"op": "next", "slot": 1, "result": None})["trial"]["trial_id"] == 1
    reply = second.ask({"op": "next", "slot": 1, "result": _result(0, slot=1)})
    assert reply == {"error": "a result for trial 0, which slot 0 holds"}
    hoard = first.ask({"op": "next", "slot": 0, "result": None})
    assert hoard == {"error": "a new trial while it still holds trial 0"}
    _wait_for(lambda: len(recorder.finished) == 2)  # both connections ended: their trials failed, none ran twice
    assert sorted(record["trial_id"] for record in recorder.finished) == [0, 1]
    assert all(record["status"] == "failed" for record in recorder.finished)
    assert recorder.started == [0, 1] and dispatcher.running_ids() == []


def test_a_slot_cannot_speak_for_another_slot_on_its_connection(served):
    make, client = served
    dispatcher, _ = make()
    slot = client(dispatcher)
    slot.ask({"op": "next", "slot": 0, "result": None})
    assert slot.ask({"op": "renew", "slot": 1, "trial_id": 0}) == {"error": "slot 1 on the connection of slot 0"}
