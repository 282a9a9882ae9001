"""The driver's loop over task events, shared by the Spark and the local launcher.

A task reports ``started``, its children's output lines, then ``done`` or ``failure``. After
the first failure the driver waits up to ``FAILURE_GRACE_S`` (or ``H3SPARK_FAILURE_GRACE_S``
seconds from the environment, read when the watch starts) for the other tasks to fail or
finish, so that ranks failing together are reported together; then it cancels what still
runs (ranks blocked on a failed peer) and raises one JobFailedError naming every failure.
The wait ends as soon as every task is accounted for, so a long grace costs a launch only
when some task neither fails nor finishes.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import time
from typing import Callable

from h3spark.errors import JobFailedError, UsageError
from h3spark.train._procs import RoleFailure

logger = logging.getLogger(__name__)

FAILURE_GRACE_S = 3.0
FAILURE_GRACE_ENV = "H3SPARK_FAILURE_GRACE_S"


def failure_grace_s() -> float:
    """The driver's wait after a first failure: ``H3SPARK_FAILURE_GRACE_S`` when set, else FAILURE_GRACE_S."""
    text = os.environ.get(FAILURE_GRACE_ENV)
    if text is None:
        return FAILURE_GRACE_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"The environment variable {FAILURE_GRACE_ENV} must be a number of seconds in the range "
                         f"[0, inf). Got {text!r} instead. Set it to e.g. 60, or unset it for the default "
                         f"{FAILURE_GRACE_S:g} s.")
    return value


def watch_events(events: queue.Queue, is_running: Callable[[], bool], num_tasks: int, start_timeout_s: float,
                 printer, echo: bool, cancel: Callable[[], None], not_started: Callable[[int], str]) -> None:
    """Print output as it comes; on failures or a start timeout, cancel and raise JobFailedError."""
    try:
        watch = _Watch(num_tasks)
    except UsageError:
        cancel()  # the tasks started already
        raise
    try:
        while (is_running() or not events.empty()) and not watch.settled():
            watch.take(events, printer, echo)
            if watch.not_started_within(start_timeout_s):
                cancel()
                raise JobFailedError(not_started(len(watch.started)))
    except KeyboardInterrupt:
        cancel()
        raise
    if watch.failures:
        cancel()
        raise launch_failed(list(watch.failures.values()), num_tasks)


def launch_failed(failures: list[RoleFailure], num_tasks: int) -> JobFailedError:
    """One error naming every failed task: role, rank, host, exit, exception and output tail."""
    failures = sorted(failures, key=lambda failure: (failure.rank, failure.role))
    return JobFailedError.of(f"the launch failed on {len(failures)} of {num_tasks} tasks",
                             [failure.as_task_failure() for failure in failures])


class _Watch:
    """What the tasks reported so far."""

    def __init__(self, num_tasks: int):
        self.num_tasks, self.began = num_tasks, time.monotonic()
        self.grace_s = failure_grace_s()
        self.started: set[int] = set()
        self.done: set[int] = set()
        self.failures: dict[int, RoleFailure] = {}  # by task: the first failure each task reported
        self.first_failure_at: float | None = None

    def take(self, events: queue.Queue, printer, echo: bool) -> None:
        try:
            event = events.get(timeout=0.2)
        except queue.Empty:
            return
        kind, task = event.get("kind"), event.get("task")
        if kind == "started":
            self.started.add(task)
            self._log_when_all(self.started, "started their roles")
        elif kind == "line" and echo:
            printer(f"[{event['role']} {event['rank']}] {event['line']}")
        elif kind == "done":
            self.done.add(task)
            self._log_when_all(self.done, "finished")
        elif kind == "failure" and task not in self.failures:
            self.failures[task] = RoleFailure.from_json(event)
            self.first_failure_at = self.first_failure_at or time.monotonic()

    def _log_when_all(self, tasks: set[int], what: str) -> None:
        if len(tasks) == self.num_tasks:
            logger.info("launch: all %d tasks %s, %.1f s after they were submitted", self.num_tasks, what,
                        time.monotonic() - self.began)

    def settled(self) -> bool:
        """Every task failed or finished, or the grace after the first failure is over."""
        if self.first_failure_at is None:
            return False
        accounted = len(self.done | set(self.failures))
        return accounted >= self.num_tasks or time.monotonic() - self.first_failure_at > self.grace_s

    def not_started_within(self, timeout_s: float) -> bool:
        return not self.failures and len(self.started) < self.num_tasks and time.monotonic() - self.began > timeout_s
