"""The driver side of an experiment: hands trials to slots and collects what they report.

Each slot (one long-lived Spark task) keeps one connection and asks for its next trial
in the same message that carries its last result, so a slot waits one loopback round
trip between trials. Trial processes open their own connection for ``report``.

Messages (JSON lines), each answered by one line:
    {"op": "next", "slot": 0, "result": {...} | null}  ->  {"trial": {...}} | {"done": true}
    {"op": "renew", "slot": 0, "trial_id": 3}          ->  {"held": true}
    {"op": "report", "trial_id": 3, "step": 1, "metrics": {...}, "score": 0.5}  ->  {"stop": false}

Anyone who reaches the port can connect, so nothing a message says is trusted:
- every message carries the experiment's token (:mod:`h3spark.transport`); a connection
  that sends a line without it, or no line within ``auth_timeout_s``, is closed unanswered;
  its first line may be at most ``AUTH_LINE_BYTES`` long (a longer one ends the connection
  unread), so connections that never authenticate cannot make the driver hold a full
  ``MAX_LINE_BYTES`` line each; an authenticated connection's lines may be that long;
- every message is checked against its schema (:mod:`h3spark.tune._schema`) before
  anything is stored; a bad one is answered ``{"error": ...}`` and ends the connection;
- a trial is leased to the connection that took it: only that connection may renew it or
  return its result, and it may hold one trial at a time. A lease not renewed within
  ``lease_s``, or held past ``timeout_s`` plus a grace, is recorded as failed (never rerun);
- paths are never taken from a message: the driver derives a trial's logdir itself.
Every refused message is logged and counted (``rejected``, ``problems``) for the summary.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from h3spark.transport import new_token, take_token
from h3spark.tune._schema import message_problem
from h3spark.tune._search import Trial
from h3spark.tune._stopping import StoppingRule
from h3spark.tune._wire import LEASE_S, MAX_LINE_BYTES, decode, encode

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
AUTH_LINE_BYTES = 64 << 10  # the longest first (unauthenticated) line; a slot's first is a small 'next' or 'report'
TIMEOUT_GRACE_S = 30.0
MAX_PROBLEMS_KEPT = 20


@dataclass(eq=False)
class _Session:
    """One connection: who it is, the slot it speaks for, why it was ended."""

    peer: str
    slot: int | None = None
    problem: str | None = None


@dataclass(eq=False)
class _Lease:
    session: _Session
    trial: Trial
    started: float  # time.monotonic()
    renewed: float


class Dispatcher:
    """A TCP server on ``host`` (port chosen by the OS) that runs the trial queue."""

    def __init__(self, host: str, on_started: Callable, on_finished: Callable, on_report: Callable,
                 stopping: StoppingRule | None = None, *, timeout_s: float | None = None, lease_s: float = LEASE_S,
                 timeout_grace_s: float = TIMEOUT_GRACE_S, auth_timeout_s: float = AUTH_TIMEOUT_S):
        self._on_started, self._on_finished, self._on_report = on_started, on_finished, on_report
        self.stopping = stopping or StoppingRule()
        self.timeout_s, self.timeout_grace_s, self.lease_s = timeout_s, timeout_grace_s, lease_s
        self.auth_timeout_s = auth_timeout_s
        self.token = new_token()
        self.rejected = 0
        self.problems: list[str] = []
        self._server = socket.create_server((host, 0))
        self.address = (host, self._server.getsockname()[1])
        self._cond = threading.Condition()
        self._pending: deque[Trial] = deque()
        self._running: dict[int, _Lease] = {}
        self._finishing = 0  # trials taken off _running whose record is being written
        self._closed = False
        threading.Thread(target=self._accept, name="h3spark-dispatcher", daemon=True).start()

    def settings(self) -> dict:
        """What a slot needs to talk to this dispatcher (part of the slots' setup)."""
        return {"address": list(self.address), "token": self.token, "lease_s": self.lease_s}

    # -- the driver's side -------------------------------------------------------------
    def submit(self, trials: list[Trial]) -> None:
        with self._cond:
            self._pending.extend(trials)
            self._cond.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing is pending or running (waits at most ``timeout_s``); gives up overdue leases."""
        self._expire_leases()
        with self._cond:
            return self._cond.wait_for(lambda: not (self._pending or self._running or self._finishing), timeout_s)

    def running_ids(self) -> list[int]:
        with self._cond:
            return sorted(self._running)

    def close(self) -> list[tuple[int, Trial]]:
        """Stop handing out trials; return (slot, trial) of those still running."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            running = [(lease.session.slot, lease.trial) for lease in self._running.values()]
            self._running.clear()
            self._cond.notify_all()
        self._server.close()
        return running

    def answer_report(self, message: dict, source: str) -> dict:
        """Answer a report that came by another channel (``source`` names it and the trial in logs):
        ``{"stop": bool}``, or ``{"error": ...}`` for a report that does not fit its schema."""
        problem = message_problem(message)
        if problem:
            self.reject(f"{problem} ({source})")
            return {"error": problem}
        return self._report(message)

    # -- connections -------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                sock, peer = self._server.accept()
            except OSError:  # close() closed the server socket
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = _Session(f"{peer[0]}:{peer[1]}")
            threading.Thread(target=self._serve, args=(sock, session), name="h3spark-slot", daemon=True).start()

    def _serve(self, sock: socket.socket, session: _Session) -> None:
        guard = self._auth_guard(sock)  # a connection that says nothing with the token is closed after auth_timeout_s
        limit = AUTH_LINE_BYTES
        try:
            with sock, sock.makefile("rb") as reader:
                for line in iter(lambda: reader.readline(limit), b""):
                    message = self._authenticated(line, session, limit)
                    if message is None:
                        return
                    guard.cancel()
                    limit = MAX_LINE_BYTES
                    reply = self._handle(message, session)
                    sock.sendall(encode(reply))
                    if "error" in reply:
                        return
        except OSError as error:
            logger.debug("connection ended: %s peer=%s slot=%s", error, session.peer, session.slot)
        finally:
            guard.cancel()
            self._lose_session(session)

    def _auth_guard(self, sock: socket.socket):
        """Started per connection; hangs up unless cancelled (on its first authenticated message) in time."""
        guard = threading.Timer(self.auth_timeout_s, _hang_up, args=(sock,))
        guard.daemon = True
        guard.start()
        return guard

    def _authenticated(self, line: bytes, session: _Session, limit: int) -> dict | None:
        if len(line) >= limit and not line.endswith(b"\n"):
            what = "first message" if limit == AUTH_LINE_BYTES else "message"
            self.reject(f"a {what} longer than {limit} bytes from {session.peer}; connection closed unread")
            return None
        try:
            message = decode(line)
        except ValueError:
            message = None
        if take_token(message, self.token):
            return message
        self.reject(f"a message without this experiment's token (or not JSON) from {session.peer}; connection closed")
        return None

    def _handle(self, message: dict, session: _Session) -> dict:
        problem = message_problem(message) or self._bind(session, message)
        if problem is None and message["op"] == "next":
            problem = self._finish(session, message.get("result")) or self._holds_none(session)
        if problem:
            session.problem = f"its slot sent a message that was refused: {problem}"
            self.reject(f"{problem} peer={session.peer} slot={session.slot}")
            return {"error": problem}
        if message["op"] == "next":
            return self._next(session)
        if message["op"] == "renew":
            return {"held": self._renew(session, message["trial_id"])}
        return self._report(message)

    @staticmethod
    def _bind(session: _Session, message: dict) -> str | None:
        """A connection speaks for the slot named in its first next/renew message, and only for it."""
        slot = message.get("slot")
        if slot is None:
            return None
        if session.slot is None:
            session.slot = slot
        return None if slot == session.slot else f"slot {slot} on the connection of slot {session.slot}"

    # -- trials ------------------------------------------------------------------------
    def _finish(self, session: _Session, record: dict | None) -> str | None:
        if record is None:
            return None
        with self._cond:
            lease = self._running.get(record["trial_id"])
            if lease is not None and lease.session is not session:
                return f"a result for trial {record['trial_id']}, which slot {lease.session.slot} holds"
            if lease is None:  # given up (lease expired) or cancelled by close(): the driver recorded it
                logger.info("ignored a late result trial=%s slot=%s", record["trial_id"], session.slot)
                return None
            self._claim(lease)
        self._record(lease.trial, {**record, "slot": session.slot})
        return None

    def _holds_none(self, session: _Session) -> str | None:
        with self._cond:
            held = [trial_id for trial_id, lease in self._running.items() if lease.session is session]
        return f"a new trial while it still holds trial {held[0]}" if held else None

    def _next(self, session: _Session) -> dict:
        with self._cond:
            self._cond.wait_for(lambda: self._pending or self._closed)
            if self._closed:
                return {"done": True}
            trial = self._pending.popleft()
            now = time.monotonic()
            self._running[trial.trial_id] = _Lease(session, trial, now, now)
        self._on_started(trial, session.slot)
        return {"trial": {"trial_id": trial.trial_id, "params": trial.params, "generation": trial.generation}}

    def _renew(self, session: _Session, trial_id: int) -> bool:
        with self._cond:
            lease = self._running.get(trial_id)
            if lease is None or lease.session is not session:
                return False
            lease.renewed = time.monotonic()
            return True

    def _report(self, message: dict) -> dict:
        trial_id = message["trial_id"]
        with self._cond:
            running = trial_id in self._running
        if not running:
            problem = f"a report for trial {trial_id}, which is not running"
            self.reject(problem)
            return {"error": problem}
        self._on_report(message)
        score = message.get("score")
        if score is None:
            return {"stop": False}
        return {"stop": self.stopping.observe(trial_id, message["step"], float(score))}

    def _claim(self, lease: _Lease) -> None:
        """Under the lock: the trial stops counting as running, but wait_idle waits for its record."""
        self._running.pop(lease.trial.trial_id, None)
        self._finishing += 1

    def _record(self, trial: Trial, record: dict) -> None:
        try:
            self._on_finished(trial, record)
        finally:
            with self._cond:
                self._finishing -= 1
                self._cond.notify_all()

    def _lose_session(self, session: _Session) -> None:
        """A connection ended while it held a trial: record the trial as failed, never rerun it."""
        with self._cond:
            lost = [lease for lease in self._running.values() if lease.session is session]
            for lease in lost:
                self._claim(lease)
        error = session.problem or f"the Spark task of slot {session.slot} was lost while it ran this trial"
        for lease in lost:
            self._record(lease.trial, {"trial_id": lease.trial.trial_id, "status": "failed", "slot": session.slot,
                                       "error": error, "ended_at": time.time()})

    def _expire_leases(self) -> None:
        now = time.monotonic()
        with self._cond:
            overdue = [(lease, why) for lease in list(self._running.values()) if (why := self._overdue(lease, now))]
            for lease, _ in overdue:
                self._claim(lease)
        for lease, (status, error) in overdue:
            logger.warning("gave up trial %s: %s slot=%s", lease.trial.trial_id, error, lease.session.slot)
            self._record(lease.trial, {"trial_id": lease.trial.trial_id, "status": status, "slot": lease.session.slot,
                                       "error": error, "ended_at": time.time()})

    def _overdue(self, lease: _Lease, now: float) -> tuple[str, str] | None:
        slot = lease.session.slot
        if self.timeout_s is not None and now - lease.started > self.timeout_s + self.timeout_grace_s:
            return "timeout", (f"slot {slot} held this trial past timeout_s={self.timeout_s} plus {self.timeout_grace_s:g} s "
                               "without returning a result; given up, not rerun")
        if now - lease.renewed > self.lease_s:
            return "failed", (f"slot {slot} did not renew its lease on this trial within lease_s={self.lease_s:g} "
                              "(its task hangs or its host is gone); given up, not rerun")
        return None

    def reject(self, problem: str) -> None:
        """Log and count a refused message (also for other channels, e.g. Kafka)."""
        with self._cond:
            self.rejected += 1
            if len(self.problems) < MAX_PROBLEMS_KEPT:
                self.problems.append(problem)
        logger.warning("refused a message: %s", problem)


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by its own thread: nothing left to end
        sock.shutdown(socket.SHUT_RDWR)
