"""The driver's loop over task events, shared by the Spark and the local launcher."""

from __future__ import annotations

import queue
import time
from typing import Callable

from h3spark.errors import JobFailedError
from h3spark.train._procs import RoleFailure


def watch_events(events: queue.Queue, is_running: Callable[[], bool], num_tasks: int, start_timeout_s: float,
                 printer, echo: bool, cancel: Callable[[], None], not_started: Callable[[int], str]) -> None:
    """Print output as it comes; on the first failure or a start timeout, cancel and raise JobFailedError."""
    started, began = set(), time.monotonic()
    try:
        while is_running() or not events.empty():
            failure = _next_failure(events, started, printer, echo)
            if failure is not None:
                cancel()
                raise JobFailedError(f"the launch failed: {failure.describe()}")
            if len(started) < num_tasks and time.monotonic() - began > start_timeout_s:
                cancel()
                raise JobFailedError(not_started(len(started)))
    except KeyboardInterrupt:
        cancel()
        raise


def _next_failure(events: queue.Queue, started: set, printer, echo: bool) -> RoleFailure | None:
    try:
        event = events.get(timeout=0.2)
    except queue.Empty:
        return None
    kind = event.get("kind")
    if kind == "started":
        started.add(event["task"])
    elif kind == "line" and echo:
        printer(f"[{event['role']} {event['rank']}] {event['line']}")
    elif kind == "failure":
        return RoleFailure(event["role"], event["rank"], event["host"], event["returncode"], event["tail"])
    return None
