"""Run a launch as one Spark barrier stage: all tasks start together, or none do.

The driver checks the task slots up front, starts the stage under its own job group,
and watches the tasks' channel: the first failed role cancels the whole stage and
raises one JobFailedError naming rank, role, host and output tail.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

from h3spark.errors import JobFailedError, UsageError
from h3spark.train._channel import DriverChannel, TaskChannel
from h3spark.train._task import LaunchFailed, LaunchSpec, run_task
from h3spark.train._watch import watch_events

logger = logging.getLogger(__name__)

EXECUTOR_WAIT_S = 10.0
START_TIMEOUT_S = 30.0
CANCEL_WAIT_S = 15.0


def run_barrier(spark, spec: LaunchSpec, start_timeout_s: float = START_TIMEOUT_S, printer=print) -> list:
    """Run ``spec`` on ``spec.num_workers`` barrier tasks; return each task's result, in task order."""
    sc = spark.sparkContext
    require_slots(sc, spec.num_workers)
    host = sc.getConf().get("spark.driver.host", "127.0.0.1")
    with DriverChannel(host) as channel:
        job = _BarrierJob(sc, spec, channel)
        job.start()
        return job.watch(start_timeout_s, printer)


def available_slots(sc) -> int:
    """How many tasks the cluster can run at once right now (Spark's own count)."""
    jsc = sc._jsc.sc()
    profile = jsc.resourceProfileManager().defaultResourceProfile()
    return int(jsc.maxNumConcurrentTasks(profile))


def require_slots(sc, needed: int, wait_s: float = EXECUTOR_WAIT_S) -> None:
    """Fail fast when the cluster cannot run ``needed`` tasks at once (executors get ``wait_s`` to register)."""
    deadline = time.monotonic() + wait_s
    slots = available_slots(sc)
    while slots < needed and time.monotonic() < deadline and not sc.master.startswith("local"):
        time.sleep(0.5)
        slots = available_slots(sc)
    if slots < needed:
        raise UsageError(
            f"the launch needs {needed} task slots at once (one per worker), but the Spark cluster at "
            f"{sc.master} has {slots}. Use fewer workers (-n {slots}) or a master with more cores, "
            f"e.g. local[{needed}] or more executors.")


class _BarrierJob:
    """The stage, running in a thread of the driver, and what its tasks reported."""

    def __init__(self, sc, spec: LaunchSpec, channel: DriverChannel):
        self.sc, self.spec, self.channel = sc, spec, channel
        self.group = f"h3spark-launch-{uuid.uuid4().hex[:8]}"
        self.results: list | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=self.group)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.sc.setJobGroup(self.group, f"h3spark launch ({self.spec.num_workers} workers)", True)
            task_fn = _task_function(self.spec, *self.channel.address, self.channel.token)
            rdd = self.sc.parallelize(range(self.spec.num_workers), self.spec.num_workers)
            self.results = sorted((json.loads(text) for text in rdd.barrier().mapPartitions(task_fn).collect()),
                                  key=lambda item: item["task"])
        except BaseException as error:  # noqa: BLE001 - handed to the watching thread
            self.error = error

    def watch(self, start_timeout_s: float, printer) -> list:
        watch_events(self.channel.events, self.thread.is_alive, self.spec.num_workers, start_timeout_s, printer,
                     self.spec.echo, self._cancel, lambda started: _not_started_message(
                         self.sc, started, self.spec.num_workers, start_timeout_s))
        if self.error is not None:
            raise JobFailedError(f"the launch stage failed: {_spark_error_tail(self.error)}") from None
        return [item["result"] for item in self.results]

    def _cancel(self) -> None:
        self.sc.cancelJobGroup(self.group)
        self.thread.join(CANCEL_WAIT_S)


def _task_function(spec: LaunchSpec, host: str, port: int, token: str):
    """The barrier task: runs on an executor; only JSON and the spec cross to it."""

    def task_fn(_rows):
        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        task = ctx.partitionId()
        address = ctx.getTaskInfos()[task].address
        own_host = address.rsplit(":", 1)[0] if ":" in address else address
        channel = TaskChannel(host, port, token, task)
        try:
            result = run_task(spec, task, own_host, ctx.allGather, channel)
        except LaunchFailed:
            raise
        except BaseException as error:
            channel.send("failure", role="task", rank=task, host=own_host, returncode=1, tail=repr(error))
            raise
        finally:
            channel.close()
        yield json.dumps(result)

    return task_fn


def _not_started_message(sc, started: int, needed: int, timeout_s: float) -> str:
    return (f"only {started} of {needed} barrier tasks started within {timeout_s:.0f} s on {sc.master} "
            f"({available_slots(sc)} task slots, some may be busy with other jobs). Free some slots or use fewer workers.")


def _spark_error_tail(error: BaseException, lines: int = 15) -> str:
    text = str(error).strip().splitlines()
    return "\n".join(text[-lines:]) if text else repr(error)
