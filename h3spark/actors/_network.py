"""The network: runs the actors of an ``actors:`` section (and its producers), takes actors in and out
while the others go on, follows their reports, keeps the state file and ends with a summary.

    >>> network = Network.from_config(config, workdir)          # threads, processes or Spark tasks
    >>> result = network.run()                                  # until every actor stopped
    >>> result.reports["learner"]["evaluated"]["accuracy"]
    0.95

    >>> network.start()                                         # or step by step, in this process
    >>> network.add("learner2"); network.remove("learner2"); network.status()
    >>> network.poll(); network.stop(); network.close()

Other processes change a running network through its control topic (``h3spark actors add|remove``,
see :mod:`h3spark.actors._registry`): ``add`` carries the actor's config, ``remove`` names it; the
network launches the actor, or sends it ``stop`` and waits for it to end (a snapshot first).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from h3spark.actors import _control as control
from h3spark.actors._child import make_transport
from h3spark.actors._envelope import Envelope
from h3spark.actors._history import ReportHistory
from h3spark.actors._launchers import ProcessLauncher, SparkLauncher, ThreadLauncher
from h3spark.actors._producer import run_producer
from h3spark.actors._registry import network_home, write_state
from h3spark.actors._stats import report_line
from h3spark.actors._transport import Transport
from h3spark.config import ActorConfig, ActorsConfig, H3SparkConfig, SparkConfig
from h3spark.errors import ConfigError, H3SparkError, UsageError
from h3spark.storage import join_uri, resolve_uri

logger = logging.getLogger(__name__)

FINISHED = ("stopped", "removed", "failed")
STOP_WAIT_S = 120.0


@dataclass
class Member:
    """An actor the network launched, and what it knows of it."""

    name: str
    config: ActorConfig
    handle: object
    state: str = "starting"
    removing: bool = False
    error: str | None = None
    report: dict = field(default_factory=dict)
    printed: str = ""


@dataclass
class NetworkResult:
    """How a run ended: each actor's state and last report, each producer's counts."""

    network: str
    states: dict[str, str]
    reports: dict[str, dict]
    errors: dict[str, str]
    producers: dict[str, dict]
    seconds: float

    @property
    def failed(self) -> list[str]:
        return sorted(name for name, state in self.states.items() if state == "failed")


def choose_launcher(section: ActorsConfig, spark: SparkConfig) -> str:
    """threads for the in-process bus, spark when Spark runs on a cluster master (spark-submit's master
    wins over ``spark.master``, as in get_spark), else processes."""
    if section.launcher != "auto":
        return section.launcher
    if section.transport == "memory":
        return "threads"
    from h3spark.spark import effective_master

    return "processes" if effective_master(spark).startswith("local") else "spark"


def transport_settings(section: ActorsConfig) -> dict:
    return {"kind": section.transport, "bootstrap_servers": section.bootstrap_servers,
            "max_record_bytes": section.max_record_bytes}


class Network:
    """The actors of one ``actors:`` section, named ``name`` (the config's name)."""

    def __init__(self, name: str, section: ActorsConfig, workdir: str | Path, launcher: str = "threads",
                 spark=None, transport: Transport | None = None, progress: Callable[[str], None] | None = None):
        self.name, self.section, self.workdir = name, section, str(workdir)
        self.home = network_home(resolve_uri(section.dir, self.workdir), name)
        self.transport_settings = transport_settings(section)
        self._owns_transport = transport is None
        self.transport = transport or make_transport(self.transport_settings)
        self.launcher = {"threads": lambda: ThreadLauncher(self.transport), "processes": ProcessLauncher,
                         "spark": lambda: SparkLauncher(spark)}[launcher]()
        self.members: dict[str, Member] = {}
        self.producers: dict[str, dict] = {}
        self.started_ns = time.time_ns()
        self.started_s = time.monotonic()
        self.state = "starting"
        self._history = ReportHistory(self.home, self.started_ns)  # for h3spark report's curves
        self._progress = progress or logger.info
        self._progress_s = 0.0
        self._stop_producers = threading.Event()
        self._subscriptions: list = []

    @classmethod
    def from_config(cls, config: H3SparkConfig, workdir: str | Path, spark=None, transport: Transport | None = None,
                    progress: Callable[[str], None] | None = None) -> "Network":
        """The network of ``config.actors``; a cluster master (spark-submit's, else ``config.spark``'s) runs it on Spark."""
        if config.actors is None:
            raise ConfigError(config.name, ["the config has no actors: section; add one (see conf/actors_online.yaml)."])
        launcher = choose_launcher(config.actors, config.spark)
        if launcher == "spark" and spark is None:
            from h3spark.spark import get_spark

            spark = get_spark(config.spark)
        return cls(config.name, config.actors, workdir, launcher, spark, transport, progress)

    # --- membership ---------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the status and control topics, launch the actors and producers that start with the network."""
        self._subscriptions = [
            self.transport.subscribe([control.status_topic(self.name)], f"{self.name}.network", self._on_status),
            self.transport.subscribe([control.control_topic(self.name)], f"{self.name}.network.control",
                                     self._on_control)]
        self.state = "running"
        for name, config in self.section.actors.items():
            if config.start:
                self.add(name, config)
        for name, config in self.section.producers.items():
            if config.start:
                self._start_producer(name, config)
        self.write_state()

    def add(self, name: str, config: ActorConfig | None = None) -> None:
        """Launch actor ``name`` (its config from the section when not given); the others go on."""
        config = config or self.section.actors.get(name)
        if config is None:
            raise UsageError(f"no actor {name!r} in the network's config (it has {', '.join(self.section.actors)}); "
                             "give its config, or add it to the actors: section.")
        if name in self.members and self.members[name].state not in FINISHED:
            raise UsageError(f"actor {name!r} is already in the network {self.name!r} ({self.members[name].state}).")
        settings = {"network": self.name, "name": name, "config": config.model_dump(mode="json"),
                    "transport": self.transport_settings, "workdir": self.workdir, "home": join_uri(self.home, name),
                    "progress_s": self.section.progress_s}
        self.members[name] = Member(name, config, self.launcher.start(settings))
        self._progress(f"actor {name}: launched ({self.launcher.kind})")
        self.write_state()

    def remove(self, name: str) -> None:
        """Ask actor ``name`` to stop (it snapshots first); it leaves the network when it has ended."""
        member = self.members.get(name)
        if member is None or member.state in FINISHED:
            running = [m.name for m in self.members.values() if m.state not in FINISHED]
            raise UsageError(f"no running actor {name!r} in the network {self.name!r} (running: "
                             f"{', '.join(running) or 'none'}).")
        member.removing = True
        self.command("stop", name)
        self._progress(f"actor {name}: asked to leave")
        self.write_state()

    def command(self, op: str, target: str = control.ALL) -> None:
        """Send a command (start, resume, pause, stop, snapshot) to one actor or to all (``*``)."""
        self.transport.publish(control.control_topic(self.name), control.command(op, target, sender=self.name))
        self.transport.flush()

    def status(self) -> dict[str, dict]:
        """Each actor's state (as the network sees it) and its last report."""
        return {name: {**member.report, "state": member.state, "error": member.error}
                for name, member in self.members.items()}

    # --- following --------------------------------------------------------------------------

    def poll(self, timeout_s: float = 0.5) -> None:
        """Take commands and reports, notice actors that ended, print progress, write the state file."""
        self._subscriptions[1].poll(timeout_s=0.0)
        self._subscriptions[0].poll(timeout_s=timeout_s)
        for member in self.members.values():
            if member.state not in FINISHED and not member.handle.alive():
                self._ended(member)
        if time.monotonic() - self._progress_s >= self.section.progress_s:
            self._progress_s = time.monotonic()
            for member in self.members.values():
                line = report_line(member.name, {**member.report, "state": member.state})
                if member.state not in FINISHED and member.report and line != member.printed:
                    member.printed = line
                    self._progress(line)
        self.write_state()

    def _ended(self, member: Member) -> None:
        member.error = member.handle.error()
        member.state = "failed" if member.error else "removed" if member.removing else "stopped"
        self._subscriptions[0].poll(timeout_s=0.0)  # its final report, if it is in already
        line = report_line(member.name, {**member.report, "state": member.state, "error": member.error})
        self._progress(line)
        if member.state == "failed":
            self._end_for(member)

    def _end_for(self, member: Member) -> None:
        """End a failed actor's streams in its name, as it would have when it stopped: the actors that
        read them stop at the end of what it published instead of waiting for it forever."""
        for topic in member.config.outputs.ended_at_stop():
            self.transport.publish(topic, control.end_marker(member.name))
            self._progress(f"{member.name}: ended its stream on {topic} in its place (it failed)")
        self.transport.flush()

    def _on_status(self, envelope: Envelope, delivery) -> None:
        meta = envelope.meta
        member = self.members.get(meta.get("actor"))
        if meta.get("op") != control.REPORT or member is None or envelope.created_ns < self.started_ns:
            return
        member.report = dict(meta)
        self._history.append(meta, envelope.created_ns)
        if member.state not in FINISHED and meta.get("state") in ("running", "paused"):
            member.state = meta["state"]

    def _on_control(self, envelope: Envelope, delivery) -> None:
        meta = envelope.meta
        if meta.get("op") not in control.NETWORK_OPS or envelope.created_ns < self.started_ns:
            return
        try:
            if meta["op"] == "add":
                config = ActorConfig.model_validate(meta["config"]) if meta.get("config") is not None else None
                self.add(str(meta.get("actor")), config)
            else:
                self.remove(str(meta.get("target")))
        except (H3SparkError, ValidationError) as error:
            logger.warning("refused the command %s from %s: %s network=%s", meta["op"], envelope.sender, error,
                           self.name)

    def _start_producer(self, name: str, config) -> None:
        record = self.producers[name] = {"state": "running"}

        def target():
            try:
                result = run_producer(name, config, self.transport, self.workdir, self._stop_producers)
                record.update(state="stopped" if result.stopped_early else "done", records=result.records,
                              holdout_records=result.holdout_records, messages=result.messages)
            except Exception as error:  # noqa: BLE001 - reported in the state file and the summary
                logger.exception("producer %s failed", name)
                record.update(state="failed", error=f"{type(error).__name__}: {error}")
                if config.end:  # its readers stop at what it wrote instead of waiting for the rest
                    self.transport.publish(config.topic, control.end_marker(name))

        record["thread"] = threading.Thread(target=target, name=f"h3spark-producer-{name}", daemon=True)
        record["thread"].start()
        self._progress(f"producer {name}: writing to {config.topic}")

    # --- the whole run ----------------------------------------------------------------------

    def active(self) -> bool:
        return any(member.state not in FINISHED for member in self.members.values()) or any(
            record["thread"].is_alive() for record in self.producers.values())

    def run(self) -> NetworkResult:
        """Start, follow until every actor ended and every producer finished, close; the result."""
        self.start()
        try:
            while self.active():
                self.poll()
        except KeyboardInterrupt:
            self._progress("interrupted: stopping the actors")
            self.stop()
            raise
        finally:
            self.close()
        return self.result()

    def stop(self, timeout_s: float = STOP_WAIT_S) -> None:
        """Ask every actor to stop and wait for them (killing those that did not within ``timeout_s``)."""
        self._stop_producers.set()
        self.command("stop")
        deadline = time.monotonic() + timeout_s
        while any(m.state not in FINISHED for m in self.members.values()) and time.monotonic() < deadline:
            self.poll(timeout_s=0.2)
        for member in self.members.values():
            if member.state not in FINISHED:
                member.handle.kill()
                self._ended(member)

    def close(self) -> None:
        self._stop_producers.set()
        for record in self.producers.values():
            record["thread"].join(STOP_WAIT_S)
        for subscription in self._subscriptions:
            subscription.close()
        self.state = "stopped"
        self.write_state()
        self._history.close()
        if self._owns_transport:
            self.transport.close()

    def result(self) -> NetworkResult:
        return NetworkResult(self.name, {name: m.state for name, m in self.members.items()},
                             {name: m.report for name, m in self.members.items()},
                             {name: m.error for name, m in self.members.items() if m.error},
                             {name: {k: v for k, v in r.items() if k != "thread"} for name, r in self.producers.items()},
                             time.monotonic() - self.started_s)

    def write_state(self) -> None:
        write_state(self.home, {
            "network": self.name, "state": self.state, "transport": self.transport_settings,
            "launcher": self.launcher.kind, "supervisor": {"pid": os.getpid(), "host": socket.gethostname()},
            "updated_at": time.time(), "actors": self.status(),
            "producers": {name: {k: v for k, v in r.items() if k != "thread"} for name, r in self.producers.items()}})
