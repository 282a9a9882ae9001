"""Run a launch without Spark or Java: one thread per task in this process.

The same task code as the Spark launcher runs here, with an in-process all_gather;
the roles are still child processes. This is what the GPU machine (torch, no Java)
and the unit tests use.
"""

from __future__ import annotations

import queue
import socket
import threading

from h3spark.errors import JobFailedError
from h3spark.train._task import LaunchFailed, LaunchSpec, run_task, task_error
from h3spark.train._watch import watch_events

START_TIMEOUT_S = 30.0


class _Gather:
    """allGather for threads: every task contributes one string and gets all of them."""

    def __init__(self, size: int, cancelled: threading.Event):
        self._items: list[str | None] = [None] * size
        self._barrier = threading.Barrier(size)
        self._cancelled = cancelled

    def for_task(self, task: int):
        def all_gather(message: str) -> list[str]:
            self._items[task] = message
            while True:
                try:
                    self._barrier.wait(timeout=0.5)
                    return list(self._items)
                except threading.BrokenBarrierError:
                    if self._cancelled.is_set():
                        raise InterruptedError("the launch was cancelled") from None
                    self._barrier.reset()
        return all_gather


class _QueueChannel:
    def __init__(self, events: queue.Queue, task: int):
        self._events, self._task = events, task

    def send(self, kind: str, **fields) -> None:
        self._events.put({"kind": kind, "task": self._task, **fields})


def run_local(spec: LaunchSpec, start_timeout_s: float = START_TIMEOUT_S, printer=print) -> list:
    """Run ``spec`` as ``spec.num_workers`` local tasks; return each task's result, in task order."""
    events: queue.Queue = queue.Queue()
    cancelled = threading.Event()
    gather = _Gather(spec.num_workers, cancelled)
    results: dict[int, object] = {}
    threads = [threading.Thread(target=_task_thread, daemon=True, name=f"h3spark-task-{task}",
                                args=(spec, task, gather.for_task(task), _QueueChannel(events, task), cancelled, results))
               for task in range(spec.num_workers)]
    for thread in threads:
        thread.start()

    def cancel() -> None:
        cancelled.set()
        for thread in threads:
            thread.join(15)

    watch_events(events, lambda: any(t.is_alive() for t in threads), spec.num_workers, start_timeout_s, printer,
                 spec.echo, cancel, lambda started: f"only {started} of {spec.num_workers} local tasks started "
                 f"within {start_timeout_s:.0f} s.")
    missing = [task for task in range(spec.num_workers) if task not in results]
    if missing:
        raise JobFailedError(f"local tasks {missing} ended without a result.")
    return [results[task] for task in range(spec.num_workers)]


def _task_thread(spec, task, all_gather, channel, cancelled, results) -> None:
    try:
        results[task] = run_task(spec, task, "127.0.0.1", all_gather, channel, cancelled)["result"]
    except (LaunchFailed, InterruptedError):
        pass  # already reported on the channel, or cancelled by the driver
    except BaseException as error:  # noqa: BLE001 - reported to the watching thread
        channel.send("failure", **task_error(task, socket.gethostname(), error).to_json())
