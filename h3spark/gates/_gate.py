"""A gate: an actor holding consecutive layers of the model (a :class:`~h3spark.train.engines.stage.Stage`),
with one handler per message kind.

- forward (``features``): run the layers; in training keep what the backward pass needs; pass the
  output to the next gate, or (the last gate) the logits to the sentinel that owns the batch;
- backward (``gradients``): apply the gradient (one update of this gate's optimizer) and pass the
  input gradient to the gate before, or (the first gate) tell the sentinel the batch is done;
- command (``control``): ``stop`` ends the gate after a report of its delays; ``forget`` drops the
  in-flight batches of a sentinel that went away without draining them.

A gate never waits: it handles the next message as soon as it has sent what the last one asked for,
so while one gate runs the backward pass of a batch the others run forward passes of later batches.
"""

from __future__ import annotations

import logging
import time

from h3spark.actors import Envelope, Transport
from h3spark.errors import DataError
from h3spark.gates import _messages as messages
from h3spark.gates._plan import GatePlan, Topics
from h3spark.train.engines.stage import build_stage

logger = logging.getLogger(__name__)

POLL_S = 0.5


class Gate:
    """One gate of ``plan`` on ``transport``; :meth:`run` handles its inbox until told to stop."""

    def __init__(self, name: str, plan: GatePlan, transport: Transport, topics: Topics):
        self.name, self.plan, self.transport, self.topics = name, plan, transport, topics
        spec = plan.gate(name)
        self.stage = build_stage(plan.config.engine, plan.spec, spec.layers, seed=plan.config.seed,
                                 options=plan.options, compensation=plan.config.compensation)
        self.previous = plan.gates[spec.index - 1].name if spec.index > 0 else None
        self.next = plan.gates[spec.index + 1].name if spec.index + 1 < len(plan.gates) else None
        self.stopping = False
        self.aborted = False  # the same as stopping, for a gate
        self._forgotten: set[str] = set()  # sentinels whose batches were dropped: their late messages too
        self.busy_s = 0.0  # time spent in the engine, forward and backward
        self.forwards = {"train": 0, "eval": 0}

    def run(self) -> dict:
        """Handle messages until a ``stop`` command; publish and return the final report."""
        subscription = self.transport.subscribe([self.topics.inbox(self.name)], self.topics.group(self.name), self.handle)
        self._status("started", layers=list(self.stage.layers))
        try:
            while not (self.stopping or self.aborted):
                subscription.poll(POLL_S)
        finally:
            subscription.close()
        report = self.report()
        self._status("report", **report)
        self.transport.flush()
        return report

    def handle(self, envelope: Envelope, _delivery=None) -> None:
        if envelope.kind in ("features", "gradients") and envelope.meta.get("sentinel") in self._forgotten:
            logger.debug("gate %s dropped a late %s message of sentinel=%s", self.name, envelope.kind,
                         envelope.meta.get("sentinel"))
        elif envelope.kind == "features":
            self._forward(envelope)
        elif envelope.kind == "gradients":
            self._backward(envelope)
        elif envelope.kind == "control":
            self._command(envelope.meta)
        else:
            logger.warning("gate %s ignored a %s message from %s", self.name, envelope.kind, envelope.sender)

    def _forward(self, envelope: Envelope) -> None:
        meta = envelope.meta
        mode = meta.get("mode")
        if mode not in ("train", "eval"):
            raise DataError(f"gate {self.name}: a forward message from {envelope.sender} has mode {mode!r}; "
                            "it must be train or eval.")
        started = time.perf_counter()
        version = self.stage.version
        output = self.stage.forward(_key(meta), envelope.arrays["x"], train=mode == "train")
        self.busy_s += time.perf_counter() - started
        self.forwards[mode] += 1
        versions = {**meta.get("versions", {}), self.name: version}
        if self.next is not None:
            message = messages.forward(self.name, meta["sentinel"], meta["batch"], mode, output, versions, version)
            self.transport.publish(self.topics.inbox(self.next), message)
        else:
            self.transport.publish(self.topics.inbox(meta["sentinel"]),
                                   messages.result(self.name, envelope, output, versions, version))

    def _backward(self, envelope: Envelope) -> None:
        meta = envelope.meta
        started = time.perf_counter()
        grad = self.stage.backward(_key(meta), envelope.arrays["grad"])
        self.busy_s += time.perf_counter() - started
        version = self.stage.version
        if self.previous is not None:
            message = messages.backward(self.name, meta["sentinel"], meta["batch"], grad, version - 1, version)
            self.transport.publish(self.topics.inbox(self.previous), message)
        else:
            self.transport.publish(self.topics.inbox(meta["sentinel"]),
                                   messages.done(self.name, meta["sentinel"], meta["batch"], version))

    def _command(self, meta) -> None:
        op = meta.get("op")
        if op == "stop":
            self.stopping = True
        elif op == "forget":
            self._forgotten.add(meta.get("sentinel"))
            dropped = [key for key in self.stage.pending_keys() if key[0] == meta.get("sentinel")]
            for key in dropped:
                self.stage.forget(key)
            logger.info("gate %s dropped %d in-flight batches of sentinel=%s", self.name, len(dropped), meta.get("sentinel"))
        else:
            logger.warning("gate %s ignored the command %r", self.name, op)

    def report(self) -> dict:
        delays = dict(sorted(self.stage.delays.items()))
        return {"gate": self.name, "version": self.stage.version, "delays": {str(k): v for k, v in delays.items()},
                "in_flight": self.stage.in_flight, "busy_s": round(self.busy_s, 3),
                "forwards": dict(self.forwards), "compensation": self.stage.compensation}

    def _status(self, op: str, **meta) -> None:
        self.transport.publish(self.topics.status, messages.status(op, self.name, **meta))


def _key(meta) -> tuple[str, int]:
    sentinel, batch = meta.get("sentinel"), meta.get("batch")
    if not isinstance(sentinel, str) or type(batch) is not int:
        raise DataError(f"a gate message needs meta.sentinel (a name) and meta.batch (an int). Got {sentinel!r}, {batch!r}.")
    return sentinel, batch
