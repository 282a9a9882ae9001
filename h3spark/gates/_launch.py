"""Where gates and sentinels run: threads of this process, one process each on this machine
(``python -m h3spark.gates SETTINGS.json``), or one long-running Spark task each.

Every role runs from the same settings (JSON): ``role`` (gate or sentinel), ``name``, ``network``,
``run_id``, ``gates`` (the ``gates:`` section as JSON), ``transport`` (kind memory or kafka,
``bootstrap_servers``, ``max_record_bytes``) and ``threads`` (math threads of a gate's process).
A launcher's ``start(settings)`` returns a handle with ``alive()``, ``error()`` and ``kill()``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import subprocess
import sys
import threading

from h3spark.actors import KafkaTransport, MemoryBus, Transport
from h3spark.actors._launchers import ProcessHandle, SparkHandle
from h3spark.actors._launchers import ThreadHandle as ActorThreadHandle
from h3spark.config import GatesConfig
from h3spark.errors import ConfigError
from h3spark.gates._gate import Gate
from h3spark.gates._plan import GatePlan, load_splits
from h3spark.gates._sentinel import build_sentinel
from h3spark.storage import local_path
from h3spark.train.engines.stage import limit_threads

logger = logging.getLogger(__name__)


def make_transport(settings: dict) -> Transport:
    """The transport ``settings`` describe (a memory bus reaches this process only)."""
    if settings["kind"] == "kafka":
        return KafkaTransport(settings["bootstrap_servers"], max_record_bytes=settings["max_record_bytes"])
    return MemoryBus(max_record_bytes=settings["max_record_bytes"])


def transport_settings(config: GatesConfig) -> dict:
    return {"kind": config.transport, "bootstrap_servers": config.bootstrap_servers,
            "max_record_bytes": config.max_record_bytes}


def build_role(settings: dict, transport: Transport):
    """The gate or sentinel of ``settings`` on ``transport``."""
    plan = GatePlan.from_config(GatesConfig.model_validate(settings["gates"]), settings["network"])
    topics = plan.topics(settings["run_id"])
    if settings["role"] == "gate":
        return Gate(settings["name"], plan, transport, topics)
    if settings["role"] == "sentinel":
        return build_sentinel(settings["name"], plan, transport, topics, load_splits(plan))
    raise ConfigError("gates", [f"unknown role {settings['role']!r} in the settings; it is gate or sentinel."])


def run_role(settings: dict, transport: Transport | None = None, outcome: dict | None = None) -> dict:
    """Build the role of ``settings`` and run it to its end; its final report. ``outcome["role"]`` is
    the role while it runs (so that a thread's role can be asked to stop)."""
    owned = transport is None
    transport = transport or make_transport(settings["transport"])
    try:
        role = build_role(settings, transport)
        if outcome is not None:
            outcome["role"] = role
        return role.run()
    finally:
        if owned:
            transport.close()


class ThreadHandle(ActorThreadHandle):
    """A role on a thread: alive and error as an actor's; kill ends it at its next poll (a thread
    cannot be killed), without draining."""

    def kill(self) -> None:
        role = self.outcome.get("role")
        if role is not None:
            role.aborted = True


class ThreadLauncher:
    """Roles as threads of this process, sharing ``transport`` (the in-process bus), or each with a
    transport of its own from its settings when it is None (Kafka clients are not shared by threads)."""

    kind = "threads"

    def __init__(self, transport: Transport | None):
        self.transport = transport

    def start(self, settings: dict) -> ThreadHandle:
        outcome: dict = {}

        def target():
            try:
                outcome["report"] = run_role(settings, self.transport, outcome)
            except Exception as error:  # noqa: BLE001 - the network reports it as this role's failure
                logger.exception("%s %s failed", settings["role"], settings["name"])
                outcome["error"] = f"{type(error).__name__}: {error}"

        thread = threading.Thread(target=target, name=f"h3spark-{settings['role']}-{settings['name']}", daemon=True)
        thread.start()
        return ThreadHandle(thread, outcome)


class ProcessLauncher:
    """One process per role on this machine; its settings and log in ``home/NAME``."""

    kind = "processes"

    def __init__(self, home: str):
        self.home = home

    def start(self, settings: dict) -> ProcessHandle:
        folder = os.path.join(local_path(self.home), settings["name"])
        os.makedirs(folder, exist_ok=True)
        settings_path = os.path.join(folder, "settings.json")
        with open(settings_path, "w") as handle:
            json.dump(settings, handle, indent=1)
        log_path = os.path.join(folder, "role.log")
        with open(log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "h3spark.gates", settings_path],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logger.info("started %s %s as process %d (log %s)", settings["role"], settings["name"], process.pid, log_path)
        return ProcessHandle(process, log_path)


class SparkLauncher:
    """Each role as one long-running Spark task, in its own job group. The cluster needs a task slot
    for every gate and sentinel at once, or the roles that wait for a slot stall the pipeline."""

    kind = "spark"

    def __init__(self, spark):
        self.sc = spark.sparkContext

    def start(self, settings: dict) -> SparkHandle:
        from h3spark.spark import JobGroup

        job = JobGroup(self.sc, "gate", f"h3spark {settings['role']} {settings['name']} of {settings['network']}")
        task = functools.partial(_spark_task, settings=settings)
        job.start(lambda: self.sc.parallelize([0], 1).mapPartitions(task).collect())
        return SparkHandle(job)


def _spark_task(_rows, settings: dict):
    try:
        _limit_threads(settings)
        yield {"report": run_role(settings)}
    except Exception as error:  # noqa: BLE001 - reported, not raised: a Spark retry would run the role twice
        yield {"error": f"{type(error).__name__}: {error} (on {socket.gethostname()})"}


def _limit_threads(settings: dict) -> None:
    """A gate's process computes with ``threads`` math threads (0: the engine's default)."""
    if settings["role"] == "gate":
        limit_threads(settings["gates"].get("engine", "torch"), settings.get("threads", 0))


def main(argv: list[str]) -> int:
    """``python -m h3spark.gates SETTINGS.json``: run one role; 0 when it ended, 2 for an error h3spark names."""
    from h3spark.errors import H3SparkError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    if len(argv) != 1:
        print("usage: python -m h3spark.gates SETTINGS.json", file=sys.stderr)
        return 2
    with open(argv[0]) as handle:
        settings = json.load(handle)
    _limit_threads(settings)
    try:
        run_role(settings)
    except H3SparkError as error:
        print(f"h3spark: {settings['role']} {settings.get('name')}: {error}", file=sys.stderr)
        return error.exit_code
    return 0
