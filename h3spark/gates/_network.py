"""The network of gates and sentinels: launches them, follows the status topic, moves the run through
its phases, prints the per-epoch lines, and ends with a :class:`GatesResult`.

    >>> network = GateNetwork.from_config(config, workdir, progress=print)
    >>> result = network.run()          # gates, then sentinels; the test sentinel after training
    train-1 epoch 1 loss 1.8721 acc 0.4213 3.1 s  versions g1 0-27 g2 0-28 g3 0-29
    ...
    >>> result.delay_percentile(99), result.scores["test"][-1]["accuracy"]

    >>> network.start()                 # or step by step: sentinels join and leave while it trains
    >>> network.add_sentinel("train-3"); network.remove_sentinel("train-2")
    >>> while network.poll(): pass
    >>> result = network.close()

Phases: ``starting`` (gates come up; sentinels launch once every gate reported started),
``training`` (until every training sentinel launched has finished), ``scoring`` (validation
sentinels are stopped, test sentinels told to start), ``stopping`` (gates are stopped and send
their reports), ``done``. A gate that fails ends the run; a sentinel that fails is reported, and
the gates drop its batches in flight.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from h3spark.actors import Envelope, Transport
from h3spark.actors._source import DEAD_LETTER_SUFFIX
from h3spark.config import H3SparkConfig
from h3spark.errors import ConfigError, UsageError
from h3spark.gates import _messages as messages
from h3spark.gates._launch import ProcessLauncher, SparkLauncher, ThreadLauncher, make_transport, transport_settings
from h3spark.gates._plan import GatePlan
from h3spark.gates._record import write_result
from h3spark.gates._report import GatesResult, epoch_line, score_line
from h3spark.storage import join_uri, resolve_uri

logger = logging.getLogger(__name__)

FINAL_REPORT_WAIT_S = 30.0  # how long a role that ended may take to deliver its last status
END_WAIT_S = 10.0  # how long close() waits for the roles to end before it kills them


@dataclass
class Member:
    """A gate or sentinel the network launched."""

    name: str
    role: str
    kind: str
    handle: object
    state: str = "starting"
    error: str | None = None


@dataclass
class _Clock:
    """When training began and ended, from the status messages' creation times (ns)."""

    first_ns: int | None = None
    last_ns: int | None = None


class GateNetwork:
    """The gates and sentinels of ``plan`` (see the module's docstring)."""

    def __init__(self, plan: GatePlan, home: str, transport: Transport | None = None, placement: str | None = None,
                 progress: Callable[[str], None] | None = None, run_id: str | None = None, spark=None):
        self.plan, self.home = plan, home
        self.placement = placement or plan.config.resolved_placement
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.topics = plan.topics(self.run_id)
        self.transport = transport
        self.progress = progress or (lambda line: logger.info("%s", line))
        self.spark = spark
        self.members: dict[str, Member] = {}
        self.batches_done: dict[str, int] = {}  # training sentinel -> batches it completed, as last reported
        self.result = GatesResult(plan.network, self.run_id, self.placement, plan.config.compensation)
        self.phase = "new"
        self._launcher = None
        self._status = None
        self._owned = transport is None
        self._started = 0.0
        self._clock = _Clock()
        self._ended: dict[str, float] = {}  # role -> when its handle was first seen ended
        self.result_uri: str | None = None  # gates.json, written by close()

    @classmethod
    def from_config(cls, config: H3SparkConfig, workdir: str, progress: Callable[[str], None] | None = None,
                    **options) -> GateNetwork:
        if config.gates is None:
            raise ConfigError("gates", ["the config has no gates: section; see conf/gates_digits.yaml for one."])
        plan = GatePlan.from_config(config.gates, config.name)
        home = resolve_uri(config.gates.dir, workdir)
        if config.gates.resolved_placement == "spark" and "spark" not in options:
            from h3spark.spark import get_spark

            options["spark"] = get_spark(config.spark)
        return cls(plan, home, progress=progress, **options)

    # --- running -------------------------------------------------------------------------

    def run(self, timeout_s: float | None = None) -> GatesResult:
        """Start, poll until done (or ``timeout_s``), close; the result."""
        self.start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while self.poll(0.2):
                if deadline is not None and time.monotonic() > deadline:
                    raise UsageError(f"the gates network {self.plan.network} did not finish within {timeout_s:.0f} s "
                                     f"(phase {self.phase}).")
        finally:
            self.close()
        return self.result

    def start(self) -> None:
        """Open the transport and the status topic; launch the gates (sentinels follow once they are up)."""
        self._started = time.monotonic()
        if self.transport is None:
            self.transport = make_transport(transport_settings(self.plan.config))
        self.transport.ensure_topics(self._topics())
        self._status = self.transport.subscribe([self.topics.status], self.topics.group(messages.DRIVER), self._on_status)
        self._launcher = self._make_launcher()
        self._sentinel_launcher = self._launcher
        if self.plan.config.sentinel_placement == "threads" and self.placement != "threads":
            self._sentinel_launcher = ThreadLauncher(None)
        for gate in self.plan.gates:
            self._launch(gate.name, "gate")
        self.phase = "starting"

    def poll(self, timeout_s: float = 0.2) -> bool:
        """Handle status messages, check the roles, move the phase on; False once done."""
        if self.phase == "done":
            return False
        self._status.poll(timeout_s)
        self._check_handles()
        self._advance()
        return self.phase != "done"

    def close(self) -> GatesResult:
        """Stop whatever still runs, close the transport; the result."""
        if self.phase != "done":
            self._kill_alive()
        deadline = time.monotonic() + END_WAIT_S  # roles on threads share the transport: let every role end first
        while any(member.handle.alive() for member in self.members.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._kill_alive()
        if self._status is not None:
            self._status.close()
        if self._owned and self.transport is not None:
            self.transport.close()
        self.result.seconds = time.monotonic() - self._started
        clock = self._clock
        if clock.first_ns is not None and clock.last_ns is not None:
            self.result.training_seconds = (clock.last_ns - clock.first_ns) / 1e9
        self.phase = "done"
        self.result_uri = write_result(self.result, join_uri(self.home, self.run_id))  # for h3spark report
        return self.result

    # --- membership ------------------------------------------------------------------------

    def add_sentinel(self, name: str) -> None:
        """Launch sentinel ``name`` (declared in the config, e.g. with ``start: false``) while the network runs."""
        if name not in self.plan.config.sentinels:
            raise UsageError(f"the config declares no sentinel {name!r}; it has {', '.join(self.plan.config.sentinels)}.")
        if name in self.members and self.members[name].state not in ("done", "removed", "stopped", "failed"):
            raise UsageError(f"sentinel {name} is already running.")
        if self.phase not in ("starting", "training"):
            raise UsageError(f"sentinels join while the network trains; it is {self.phase}.")
        self._launch(name, "sentinel")

    def remove_sentinel(self, name: str) -> None:
        """Ask sentinel ``name`` to leave: it sends nothing more, drains its batches in flight, and ends."""
        member = self.members.get(name)
        if member is None or member.role != "sentinel" or member.state not in ("starting", "running"):
            running = [m.name for m in self.members.values() if m.role == "sentinel" and m.state in ("starting", "running")]
            raise UsageError(f"no running sentinel {name!r} (running: {', '.join(running) or 'none'}).")
        self._command(name, "stop")

    # --- internals ---------------------------------------------------------------------------

    def _topics(self) -> list[str]:
        """Every topic of the run, with its dead-letter topic. Created before any role subscribes: a
        Kafka consumer that joins its group before a new topic's metadata reached it can be left
        without the topic's partitions (kafka-python waits for a metadata refresh, minutes later)."""
        roles = [gate.name for gate in self.plan.gates] + list(self.plan.config.sentinels)
        topics = [self.topics.inbox(role) for role in roles] + [self.topics.status]
        return topics + [topic + DEAD_LETTER_SUFFIX for topic in topics]

    def _make_launcher(self):
        if self.placement == "threads":  # the in-process bus is shared; a Kafka client is not: each role has its own
            return ThreadLauncher(self.transport if self.plan.config.transport == "memory" else None)
        if self.placement == "processes":
            return ProcessLauncher(join_uri(self.home, self.run_id))
        if self.spark is None:
            raise UsageError("placement spark needs a SparkSession: pass spark=..., or run with h3spark gates.")
        return SparkLauncher(self.spark)

    def _launch(self, name: str, role: str) -> None:
        kind = "gate" if role == "gate" else self.plan.config.sentinels[name].kind
        settings = {"role": role, "name": name, "network": self.plan.network, "run_id": self.run_id,
                    "gates": self.plan.config.model_dump(mode="json"), "threads": self.plan.config.threads,
                    "transport": transport_settings(self.plan.config)}
        launcher = self._launcher if role == "gate" else self._sentinel_launcher
        self.members[name] = Member(name, role, kind, launcher.start(settings))

    def _command(self, name: str, op: str, **meta) -> None:
        self.transport.publish(self.topics.inbox(name), messages.command(op, **meta))

    def _sentinels(self, *kinds: str) -> list[Member]:
        return [m for m in self.members.values() if m.role == "sentinel" and m.kind in kinds]

    def _advance(self) -> None:
        finished = ("done", "removed", "stopped", "failed")
        gates = [m for m in self.members.values() if m.role == "gate"]
        if self.phase == "starting" and all(m.state == "running" for m in gates):
            for name, sentinel in self.plan.config.sentinels.items():
                if sentinel.start:
                    self._launch(name, "sentinel")
            self.phase = "training"
        elif self.phase == "training" and all(m.state in finished for m in self._sentinels("train")):
            trained = sum(self.batches_done.values())  # the validation passes still due are counted from it
            for member in self._sentinels("validation"):
                self._command(member.name, "stop", batches=trained)
            for member in self._sentinels("test"):
                self._command(member.name, "start")
            self.phase = "scoring"
        elif self.phase == "scoring" and all(m.state in finished for m in self._sentinels("validation", "test")):
            for member in gates:
                self._command(member.name, "stop")
            self.phase = "stopping"
        elif self.phase == "stopping" and all(m.state in finished for m in gates):
            self.phase = "done"

    def _check_handles(self) -> None:
        for member in self.members.values():
            if member.state in ("done", "removed", "stopped", "failed"):
                continue
            error = member.handle.error()
            if error is None and (member.handle.alive() or not self._silent_too_long(member)):
                continue
            member.state, member.error = "failed", error or "ended without a final report"
            self.result.errors[member.name] = member.error
            self.progress(f"{member.role} {member.name} failed: {member.error}")
            if member.role == "gate":
                self._abort()
            else:
                for gate in self.plan.gates:
                    self._command(gate.name, "forget", sentinel=member.name)

    def _silent_too_long(self, member: Member) -> bool:
        """A role that ended without an error: its last status may still be on its way; wait for it a while."""
        since = self._ended.setdefault(member.name, time.monotonic())
        return time.monotonic() - since > FINAL_REPORT_WAIT_S

    def _abort(self) -> None:
        """A gate failed: the pipeline cannot go on. End everyone."""
        self._kill_alive()
        self.phase = "done"

    def _kill_alive(self) -> None:
        for member in self.members.values():
            if member.handle.alive():
                member.handle.kill()

    def _on_status(self, envelope: Envelope, _delivery=None) -> None:
        meta, sender = envelope.meta, envelope.sender
        member = self.members.get(sender)
        op = meta.get("op")
        if member is None:
            return
        if op == "started":
            member.state = "running"
            if member.kind == "train" and self._clock.first_ns is None:
                self._clock.first_ns = envelope.created_ns
        elif op == "progress":
            self.batches_done[sender] = meta.get("batches", 0)
        elif op == "epoch":
            self.result.epochs.setdefault(sender, []).append(dict(meta))
            self.progress(epoch_line(sender, meta))
        elif op == "score":
            at_s = None if self._clock.first_ns is None else (envelope.created_ns - self._clock.first_ns) / 1e9
            self.result.scores.setdefault(sender, []).append({**meta, "at_s": at_s})
            self.progress(score_line(sender, meta))
        elif op == "finished":
            member.state = meta.get("state", "done")
            self.result.sentinels[sender] = dict(meta)
            if member.kind == "train":
                self._clock.last_ns = max(self._clock.last_ns or 0, envelope.created_ns)
            self.progress(f"{sender} {member.state}: {meta.get('batches', meta.get('passes', 0))} "
                          f"{'batches' if member.kind == 'train' else 'passes'}")
        elif op == "report":
            member.state = "done"
            self.result.gates[sender] = dict(meta)
