"""Run a launch as one Spark barrier stage: all tasks start together, or none do.

The driver checks the task slots up front, starts the stage under its own job group,
and watches the tasks' channel, which is also their all-gather (Spark's own allGather
polls once a second). A task whose role fails reports it and ends without
raising, so Spark does not kill the other tasks before they report theirs: the driver
collects every failure (see ``_watch``), cancels the rest and raises one JobFailedError
naming each failed rank with its role, host, exception and output tail.
"""

from __future__ import annotations

import json
import logging

from h3spark.errors import JobFailedError, UsageError
from h3spark.spark import JobGroup, task_slots, translate
from h3spark.train._channel import DriverChannel, TaskChannel
from h3spark.train._procs import RoleFailure
from h3spark.train._task import LaunchFailed, LaunchSpec, run_task, task_error
from h3spark.train._watch import launch_failed, watch_events

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
CANCEL_WAIT_S = 15.0


def run_barrier(spark, spec: LaunchSpec, start_timeout_s: float = START_TIMEOUT_S, printer=print) -> list:
    """Run ``spec`` on ``spec.num_workers`` barrier tasks; return each task's result, in task order."""
    sc = spark.sparkContext
    require_slots(sc, spec.num_workers)
    host = sc.getConf().get("spark.driver.host", "127.0.0.1")
    with DriverChannel(host, spec.num_workers) as channel:
        job = JobGroup(sc, "launch", f"h3spark launch ({spec.num_workers} workers)")
        task_fn = _task_function(spec, *channel.address, channel.token)
        job.start(lambda: sc.parallelize(range(spec.num_workers), spec.num_workers).barrier().mapPartitions(task_fn).collect())

        def cancel() -> None:
            job.cancel()
            job.join(CANCEL_WAIT_S)

        watch_events(channel.events, job.is_alive, spec.num_workers, start_timeout_s, printer, spec.echo, cancel,
                     lambda started: _not_started_message(sc, started, spec.num_workers, start_timeout_s))
    if job.error is not None:
        translated = translate(job.error, "the launch stage")
        raise translated or JobFailedError(f"the launch stage failed: {type(job.error).__name__}: {job.error}") from None
    return _results([json.loads(text) for text in job.result], spec.num_workers)


def require_slots(sc, needed: int) -> None:
    """Fail fast when the cluster cannot run ``needed`` tasks at once (once its executors had
    ``task_slots``' time to register)."""
    slots = task_slots(sc, needed)
    if slots < needed:
        raise UsageError(
            f"the launch needs {needed} task slots at once (one per worker), but the Spark cluster at "
            f"{sc.master} has {slots}. Use fewer workers (-n {slots}) or a master with more cores, "
            f"e.g. local[{needed}] or more executors.")


def _results(outcomes: list[dict], num_tasks: int) -> list:
    """Each task's result in task order; failures the channel did not deliver are raised here."""
    failures = [RoleFailure.from_json(outcome["failure"]) for outcome in outcomes if "failure" in outcome]
    if failures:
        raise launch_failed(failures, num_tasks)
    results = {outcome["task"]: outcome["result"] for outcome in outcomes}
    missing = [task for task in range(num_tasks) if task not in results]
    if missing:
        raise JobFailedError(f"barrier tasks {missing} ended without a result.")
    return [results[task] for task in range(num_tasks)]


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
            outcome = run_task(spec, task, own_host, channel.all_gather, channel)
        except LaunchFailed as failed:  # reported on the channel; ending normally lets the other tasks report too
            outcome = {"task": task, "failure": json.loads(str(failed))}
        except BaseException as error:
            channel.send("failure", **task_error(task, own_host, error).to_json())
            raise
        finally:
            channel.close()
        yield json.dumps(outcome)

    return task_fn


def _not_started_message(sc, started: int, needed: int, timeout_s: float) -> str:
    return (f"only {started} of {needed} barrier tasks started within {timeout_s:.0f} s on {sc.master} "
            f"({task_slots(sc, wait_s=0)} task slots, some may be busy with other jobs). Free some slots or use fewer workers.")
