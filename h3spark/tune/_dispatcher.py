"""The driver side of an experiment: hands trials to slots and collects what they report.

Each slot (one long-lived Spark task) keeps one connection and asks for its next trial
in the same message that carries its last result, so a slot waits one loopback round
trip between trials. Trial processes open their own connection for ``report``.

Messages (JSON lines), each answered by one line:
    {"op": "next", "slot": 0, "result": {...} | null}  ->  {"trial": {...}} | {"done": true}
    {"op": "report", "trial_id": 3, "step": 1, "metrics": {...}}  ->  {"stop": false}
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from typing import Callable

from h3spark.tune._search import Trial
from h3spark.tune._stopping import StoppingRule
from h3spark.tune._wire import MAX_LINE_BYTES, encode

logger = logging.getLogger(__name__)


class Dispatcher:
    """A TCP server on ``host`` (port chosen by the OS) that runs the trial queue."""

    def __init__(self, host: str, on_started: Callable, on_finished: Callable, on_report: Callable,
                 stopping: StoppingRule | None = None):
        self._on_started, self._on_finished, self._on_report = on_started, on_finished, on_report
        self.stopping = stopping or StoppingRule()
        self._server = socket.create_server((host, 0))
        self.address = (host, self._server.getsockname()[1])
        self._cond = threading.Condition()
        self._pending: deque[Trial] = deque()
        self._running: dict[int, tuple[int, Trial]] = {}
        self._closed = False
        threading.Thread(target=self._accept, name="h3spark-dispatcher", daemon=True).start()

    # -- the driver's side -------------------------------------------------------------
    def submit(self, trials: list[Trial]) -> None:
        with self._cond:
            self._pending.extend(trials)
            self._cond.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing is pending or running (waits at most ``timeout_s``)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._running, timeout_s)

    def running_ids(self) -> list[int]:
        with self._cond:
            return sorted(self._running)

    def close(self) -> list[tuple[int, Trial]]:
        """Stop handing out trials; return (slot, trial) of those still running."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            running = list(self._running.values())
            self._running.clear()
            self._cond.notify_all()
        self._server.close()
        return running

    # -- the slots' side ---------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(sock,), name="h3spark-slot", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        slot = None
        try:
            with sock, sock.makefile("rb") as reader:
                for line in iter(lambda: reader.readline(MAX_LINE_BYTES), b""):
                    message = json.loads(line)
                    slot = message.get("slot", slot)
                    sock.sendall(encode(self._handle(message)))
        except (OSError, ValueError) as error:
            logger.debug("slot connection ended: %s slot=%s", error, slot)
        finally:
            if slot is not None:
                self._lose_slot(slot)

    def _handle(self, message: dict) -> dict:
        op = message.get("op")
        if op == "next":
            if message.get("result"):
                self._finish(message["result"])
            return self._next(message["slot"])
        if op == "report":
            return {"stop": self._report(message)}
        return {"error": f"unknown op {op!r}"}

    def _finish(self, record: dict) -> None:
        with self._cond:
            known = self._running.get(record["trial_id"])
        if known is None:  # a trial cancelled by close() is recorded by the driver
            return
        self._on_finished(known[1], record)  # recorded before the trial stops counting as running
        with self._cond:
            self._running.pop(record["trial_id"], None)
            self._cond.notify_all()

    def _next(self, slot: int) -> dict:
        with self._cond:
            self._cond.wait_for(lambda: self._pending or self._closed)
            if self._closed:
                return {"done": True}
            trial = self._pending.popleft()
            self._running[trial.trial_id] = (slot, trial)
        self._on_started(trial, slot)
        return {"trial": {"trial_id": trial.trial_id, "params": trial.params, "generation": trial.generation}}

    def answer_report(self, message: dict) -> bool:
        """Record a report that came by another channel (Kafka); True means stop the trial."""
        return self._report(message)

    def _report(self, message: dict) -> bool:
        self._on_report(message)
        score = message.get("score")
        if score is None:
            return False
        return self.stopping.observe(message["trial_id"], int(message["step"]), float(score))

    def _lose_slot(self, slot: int) -> None:
        """A slot's connection broke while it ran a trial: record the trial as failed, never rerun it."""
        with self._cond:
            lost = [trial for owner, trial in self._running.values() if owner == slot]
        for trial in lost:
            self._on_finished(trial, {"trial_id": trial.trial_id, "status": "failed", "slot": slot,
                                      "error": f"the Spark task of slot {slot} was lost while it ran this trial",
                                      "ended_at": time.time()})
        with self._cond:
            for trial in lost:
                self._running.pop(trial.trial_id, None)
            self._cond.notify_all()
