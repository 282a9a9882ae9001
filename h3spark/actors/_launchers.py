"""Where a network's actors run: threads of this process (the in-process bus), one process each on this
machine (``python -m h3spark.actors SETTINGS``), or one long-running Spark task each.

Each launcher's ``start(settings)`` returns a handle: ``alive()``, ``error()`` (None, or what went
wrong with the tail of its output) and ``kill()`` (the last resort: actors stop by command).
``settings`` is the JSON an actor needs (see :func:`h3spark.actors._child.run_actor`).
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

from h3spark.actors._child import run_actor
from h3spark.actors._transport import Transport
from h3spark.errors import H3SparkError
from h3spark.storage import join_uri, local_path

logger = logging.getLogger(__name__)

TAIL_CHARS = 2000
KILL_WAIT_S = 10.0


class ThreadHandle:
    def __init__(self, thread: threading.Thread, outcome: dict):
        self.thread, self.outcome = thread, outcome

    def alive(self) -> bool:
        return self.thread.is_alive()

    def error(self) -> str | None:
        return self.outcome.get("error")

    def kill(self) -> None:
        actor = self.outcome.get("actor")
        if actor is not None:  # a thread cannot be killed: ask it to stop at its next message
            actor.stopping = True


class ThreadLauncher:
    """Actors as threads sharing this process's transport (the memory bus)."""

    kind = "threads"

    def __init__(self, transport: Transport):
        self.transport = transport

    def start(self, settings: dict) -> ThreadHandle:
        outcome: dict = {}

        def target():
            try:
                outcome["status"] = run_actor(settings, self.transport, outcome)
            except H3SparkError as error:  # said plainly: the network reports it as this actor's failure
                logger.error("actor %s failed: %s", settings["name"], error)
                outcome["error"] = f"{type(error).__name__}: {error}"
            except Exception as error:  # noqa: BLE001 - a bug: with its traceback, and reported as the failure
                logger.exception("actor %s failed", settings["name"])
                outcome["error"] = f"{type(error).__name__}: {error}"

        thread = threading.Thread(target=target, name=f"h3spark-actor-{settings['name']}", daemon=True)
        thread.start()
        return ThreadHandle(thread, outcome)


class ProcessHandle:
    def __init__(self, process: subprocess.Popen, log_path: str):
        self.process, self.log_path = process, log_path

    def alive(self) -> bool:
        return self.process.poll() is None

    def error(self) -> str | None:
        code = self.process.poll()
        if code in (None, 0):
            return None
        return f"exit status {code}; the end of {self.log_path}:\n{_tail(self.log_path)}"

    def kill(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - TAIL_CHARS))
            return handle.read().decode("utf-8", "replace")
    except OSError as error:
        return f"(no log: {error})"


class ProcessLauncher:
    """One process per actor on this machine; its settings and log beside its snapshots."""

    kind = "processes"

    def start(self, settings: dict) -> ProcessHandle:
        home = local_path(settings["home"])
        os.makedirs(home, exist_ok=True)
        settings_path = os.path.join(home, "settings.json")
        with open(settings_path, "w") as handle:
            json.dump(settings, handle, indent=1)
        log_path = os.path.join(home, "actor.log")
        with open(log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "h3spark.actors", settings_path],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logger.info("started actor %s as process %d (log %s)", settings["name"], process.pid, log_path)
        return ProcessHandle(process, log_path)


class SparkHandle:
    def __init__(self, job):
        self.job = job

    def alive(self) -> bool:
        return self.job.is_alive()

    def error(self) -> str | None:
        if self.job.error is not None:
            return f"{type(self.job.error).__name__}: {self.job.error}"
        failures = [item["error"] for item in self.job.result or [] if item.get("error")]
        return failures[0] if failures else None

    def kill(self) -> None:
        self.job.cancel()


class SparkLauncher:
    """Each actor as one long-running Spark task (its own job group, so one can go without the others)."""

    kind = "spark"

    def __init__(self, spark):
        self.sc = spark.sparkContext

    def start(self, settings: dict) -> SparkHandle:
        from h3spark.spark import JobGroup

        job = JobGroup(self.sc, "actor", f"h3spark actor {settings['name']} of network {settings['network']}")
        task = functools.partial(_spark_task, settings=settings)
        job.start(lambda: self.sc.parallelize([0], 1).mapPartitions(task).collect())
        return SparkHandle(job)


def _spark_task(_rows, settings: dict):
    try:
        yield {"status": run_actor(settings)}
    except Exception as error:  # noqa: BLE001 - reported, not raised: a Spark retry would run the actor twice
        yield {"error": f"{type(error).__name__}: {error} (on {socket.gethostname()})"}


def actor_home(network_home: str, name: str) -> str:
    return join_uri(network_home, name)
