"""Sentinels: the actors that feed a gates network with data and score what comes out.

- :class:`TrainingSentinel` sends its shard's batches, ``epochs`` times (shuffled each epoch), through
  the gates; for each batch's logits it computes the loss and its gradient and sends the backward
  pass to the last gate. At most ``max_in_flight`` of its batches are in the pipeline at once (a
  batch leaves when the first gate reports its backward pass done), so the gates keep at most that
  many batches' activations and weight copies for it. Each epoch ends with a status line.
- :class:`ValidationSentinel` scores the validation rows (inference only) every ``every_s`` seconds,
  or once for each ``every_batches`` batches the training sentinels together completed.
- :class:`TestSentinel` scores the test rows once, when the network tells it to (after training).

Scores are stamped with the weight versions each gate had when the batches passed (``versions``:
gate -> [lowest, highest]). A sentinel told to ``stop`` sends nothing more, waits for its batches in
flight to come back (so the gates free what they keep for them), and ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from h3spark.actors import Envelope, Transport
from h3spark.errors import DataError
from h3spark.gates import _messages as messages
from h3spark.gates._plan import GatePlan, Split, Topics
from h3spark.train.engines.stage import mean_cross_entropy

POLL_S = 0.05


@dataclass
class Tally:
    """Loss and accuracy summed over batches, and the weight versions they saw. A loss that is not
    finite (a diverged model, scored) is reported as None."""

    loss_sum: float = 0.0
    correct: int = 0
    rows: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)
    versions: dict[str, list[int]] = field(default_factory=dict)

    def add(self, loss: float, logits: np.ndarray, labels: np.ndarray, versions: dict) -> None:
        self.loss_sum += loss * len(labels)
        self.correct += int((np.asarray(logits).argmax(axis=1) == labels).sum())
        self.rows += len(labels)
        for gate, version in versions.items():
            low, high = self.versions.get(gate, [version, version])
            self.versions[gate] = [min(low, version), max(high, version)]

    def summary(self) -> dict:
        loss = self.loss_sum / max(self.rows, 1)
        return {"loss": loss if np.isfinite(loss) else None, "accuracy": self.correct / max(self.rows, 1),
                "rows": self.rows, "seconds": round(time.monotonic() - self.started, 3), "versions": self.versions}


class Sentinel:
    """What every sentinel shares: its inbox, batches in flight, the status it publishes."""

    kind = ""
    follows_status = False  # also reads the status topic (the training sentinels' progress)

    def __init__(self, name: str, plan: GatePlan, transport: Transport, topics: Topics, split: Split):
        if len(split) == 0:
            raise DataError(f"the {self.kind} sentinel {name} has no rows; give its split rows (gates.data: rows, "
                            "validation_fraction, test_fraction, or fewer shards).")
        self.name, self.plan, self.transport, self.topics, self.split = name, plan, transport, topics, split
        config = plan.config.sentinels[name]
        self.config = config
        self.batch_size = plan.config.training.batch_size
        self.max_in_flight = config.max_in_flight or plan.config.max_in_flight
        self.first_gate, self.last_gate = plan.gates[0].name, plan.gates[-1].name
        self.in_flight: dict[int, tuple[np.ndarray, object]] = {}  # batch -> (rows, its tally)
        self.next_batch = 0
        self.stopping = False
        self.aborted = False  # the network gave up: end now, without draining
        self.state = "running"

    def run(self) -> dict:
        inbox = self.topics.inbox(self.name)
        topics = [inbox, self.topics.status] if self.follows_status else [inbox]
        subscription = self.transport.subscribe(topics, self.topics.group(self.name), self.handle)
        self._status("started", kind=self.kind, rows=len(self.split))
        try:
            while not (self.finished() or self.aborted):
                self.step()
                subscription.poll(POLL_S)
        finally:
            subscription.close()
        self.state = "aborted" if self.aborted else "done" if self.state == "running" else self.state
        report = {"kind": self.kind, "state": self.state, **self.report()}
        self._status("finished", **report)
        self.transport.flush()
        return report

    def handle(self, envelope: Envelope, _delivery=None) -> None:
        op = envelope.meta.get("op")
        if envelope.kind == "predictions":
            self._on_result(envelope)
        elif envelope.kind == "control" and op == "done":
            self._on_done(envelope.meta["batch"])
        elif envelope.kind == "control" and op == "stop":
            self.stopping = True
            self.state = "removed" if self.kind == "train" else "stopped"
            self._on_stop(envelope.meta)
        elif envelope.kind == "control":
            self._on_control(envelope)

    def _send(self, rows: np.ndarray, mode: str, tally) -> None:
        batch, self.next_batch = self.next_batch, self.next_batch + 1
        self.in_flight[batch] = (rows, tally)
        message = messages.forward(self.name, self.name, batch, mode, self.split.features[rows], {})
        self.transport.publish(self.topics.inbox(self.first_gate), message)

    def _status(self, op: str, **meta) -> None:
        self.transport.publish(self.topics.status, messages.status(op, self.name, **meta))

    # --- what each kind implements --------------------------------------------------------

    def step(self) -> None:
        """Send what may be sent now."""

    def finished(self) -> bool:
        raise NotImplementedError

    def report(self) -> dict:
        return {}

    def _on_result(self, envelope: Envelope) -> None:
        raise NotImplementedError

    def _on_done(self, batch: int) -> None:
        raise DataError(f"sentinel {self.name} ({self.kind}) got a backward pass's done for batch {batch}; "
                        "only training batches have a backward pass.")

    def _on_control(self, envelope: Envelope) -> None:
        """Other commands and status messages (the validation sentinel follows progress)."""

    def _on_stop(self, meta) -> None:
        """What the ``stop`` command says besides stopping (the validation sentinel: the batches trained)."""


def _batches(order: np.ndarray, size: int) -> list[np.ndarray]:
    return [order[start:start + size] for start in range(0, len(order), size)]


class TrainingSentinel(Sentinel):
    """Feeds its shard for ``epochs`` epochs (see the module's docstring), each epoch in the order of
    ``numpy.random.default_rng([seed, shard]).permutation(rows)`` (one generator, drawn each epoch), in
    batches of ``batch_size`` (the last one smaller)."""

    kind = "train"

    def __init__(self, name: str, plan: GatePlan, transport: Transport, topics: Topics, split: Split):
        super().__init__(name, plan, transport, topics, split)
        self.epochs = self.config.epochs or 1
        self._rng = np.random.default_rng([plan.config.seed, plan.shard_of(name)[0]])
        self._queue: list[np.ndarray] = []
        self._epoch = 0  # the epoch whose batches are being sent (1-based once sending)
        self._tallies: dict[int, tuple[Tally, list[int]]] = {}  # epoch -> (tally, [batches left])
        self.batches_done = 0
        self.samples_done = 0
        self.epoch_lines: list[dict] = []

    def step(self) -> None:
        while not self.stopping and len(self.in_flight) < self.max_in_flight:
            if not self._queue:
                if self._epoch == self.epochs:
                    return
                self._epoch += 1
                self._queue = _batches(self._rng.permutation(len(self.split)), self.batch_size)
                self._tallies[self._epoch] = (Tally(), [len(self._queue)])
            tally = self._tallies[self._epoch]
            self._send(self._queue.pop(0), "train", (self._epoch, tally[0]))

    def finished(self) -> bool:
        done_sending = self.stopping or (self._epoch == self.epochs and not self._queue)
        return done_sending and not self.in_flight

    def _on_result(self, envelope: Envelope) -> None:
        meta = envelope.meta
        rows, (_, tally) = self._batch(meta["batch"])
        labels = self.split.labels[rows]
        loss, grad = mean_cross_entropy(envelope.arrays["logits"], labels)
        if not np.isfinite(loss):
            raise DataError(f"training diverged: sentinel {self.name}'s batch {meta['batch']} has loss {loss} (weight "
                            f"versions {meta.get('versions')}). Lower gates.training.lr or momentum, or max_in_flight "
                            "(the gradients' delay), or set compensation: stash.")
        tally.add(loss, envelope.arrays["logits"], labels, meta.get("versions", {}))
        message = messages.backward(self.name, self.name, meta["batch"], grad, envelope.computed_with)
        self.transport.publish(self.topics.inbox(self.last_gate), message)

    def _on_done(self, batch: int) -> None:
        rows, (epoch, _) = self._batch(batch)
        del self.in_flight[batch]
        self.batches_done += 1
        self.samples_done += len(rows)
        self._status("progress", batches=self.batches_done)
        tally, left = self._tallies[epoch]
        left[0] -= 1
        if left[0] == 0:
            line = {"epoch": epoch, "samples": tally.rows, **tally.summary()}
            self.epoch_lines.append(line)
            self._status("epoch", **line)

    def _batch(self, batch: int):
        if batch not in self.in_flight:
            raise DataError(f"sentinel {self.name} got a message for batch {batch}, which it has not in flight.")
        return self.in_flight[batch]

    def report(self) -> dict:
        return {"batches": self.batches_done, "samples": self.samples_done, "epochs": len(self.epoch_lines)}


class _ScoringSentinel(Sentinel):
    """Scores a whole split in inference mode, pass after pass."""

    def __init__(self, name: str, plan: GatePlan, transport: Transport, topics: Topics, split: Split):
        super().__init__(name, plan, transport, topics, split)
        self._queue: list[np.ndarray] = []
        self._tally: Tally | None = None
        self.scores: list[dict] = []

    def start_pass(self) -> None:
        self._queue = _batches(np.arange(len(self.split)), self.batch_size)
        self._tally = Tally()

    @property
    def scoring(self) -> bool:
        return self._tally is not None

    def step(self) -> None:
        """Send the pass's next batches; a pass once started is finished, even after ``stop``."""
        while self._queue and len(self.in_flight) < self.max_in_flight:
            self._send(self._queue.pop(0), "eval", self._tally)

    def _on_result(self, envelope: Envelope) -> None:
        batch = envelope.meta["batch"]
        if batch not in self.in_flight:
            return  # a pass cut short by stop
        rows, tally = self.in_flight.pop(batch)
        labels = self.split.labels[rows]
        loss, _ = mean_cross_entropy(envelope.arrays["logits"], labels)
        tally.add(loss, envelope.arrays["logits"], labels, envelope.meta.get("versions", {}))
        if not self._queue and not self.in_flight and tally is self._tally:
            score = {"kind": self.kind, "pass": len(self.scores) + 1, **tally.summary()}
            self.scores.append(score)
            self._tally = None
            self._status("score", **score)

    def report(self) -> dict:
        return {"passes": len(self.scores)}


class ValidationSentinel(_ScoringSentinel):
    """Scores the validation rows every ``every_s`` seconds, or once for each ``every_batches`` training
    batches (all training sentinels together, as their progress on the status topic says). With
    ``every_batches`` the passes follow the count, not the clock: a pass that falls due while another
    runs starts after it, and the ``stop`` sent when training ends says how many batches were trained
    in all, so the passes still due then run (on the final weights) before the sentinel ends:
    ``batches // every_batches`` passes in all. With ``every_s``, ``stop`` ends it after its pass."""

    kind = "validation"
    follows_status = True

    def __init__(self, name: str, plan: GatePlan, transport: Transport, topics: Topics, split: Split):
        super().__init__(name, plan, transport, topics, split)
        self._progress: dict[str, int] = {}
        self._trained: int | None = None  # training batches in all, as the stop command said
        self._due_at = time.monotonic() + (self.config.every_s or 0.0)
        self.passes_started = 0

    def step(self) -> None:
        if not self.scoring and self._due():
            self.passes_started += 1
            self.start_pass()
        super().step()

    def _due(self) -> bool:
        if self.config.every_s is not None:
            if self.stopping or time.monotonic() < self._due_at:
                return False
            self._due_at = time.monotonic() + self.config.every_s
            return True
        total = max(sum(self._progress.values()), self._trained or 0)
        return self.passes_started < total // self.config.every_batches

    def _on_control(self, envelope: Envelope) -> None:
        if envelope.meta.get("op") == "progress" and isinstance(envelope.meta.get("batches"), int):
            self._progress[envelope.sender] = envelope.meta["batches"]

    def _on_stop(self, meta) -> None:
        if isinstance(meta.get("batches"), int):
            self._trained = meta["batches"]

    def finished(self) -> bool:
        return self.stopping and not self.scoring and not self._due()


class TestSentinel(_ScoringSentinel):
    """Scores the test rows once, on the network's ``start`` command (sent when training has ended)."""

    kind = "test"
    __test__ = False  # not a pytest class

    def _on_control(self, envelope: Envelope) -> None:
        if envelope.meta.get("op") == "start" and not self.scoring and not self.scores:
            self.start_pass()

    def finished(self) -> bool:
        return (self.stopping and not self.scoring) or (bool(self.scores) and not self.in_flight)


SENTINELS = {"train": TrainingSentinel, "validation": ValidationSentinel, "test": TestSentinel}
SPLITS = {"train": "train", "validation": "validation", "test": "test"}


def build_sentinel(name: str, plan: GatePlan, transport: Transport, topics: Topics, splits: dict[str, Split]) -> Sentinel:
    """The sentinel ``name`` of the plan's config, with its rows (a training sentinel: its shard)."""
    kind = plan.config.sentinels[name].kind
    split = splits[SPLITS[kind]]
    if kind == "train":
        split = split.shard(*plan.shard_of(name))
    return SENTINELS[kind](name, plan, transport, topics, split)
