"""Run a launch as one Spark barrier stage: all tasks start together, or none do.

The driver checks the task slots up front, starts the stage under its own job group,
and watches the tasks' channel, which is also their all-gather (Spark's own allGather
polls once a second). A task whose role fails reports it and ends without
raising, so Spark does not kill the other tasks before they report theirs: the driver
collects every failure (see ``_watch``), cancels the rest and raises one JobFailedError
naming each failed rank with its role, host, exception and output tail.

On a Spark Connect session (``spark.remote``) the stage is a barrier ``mapInArrow`` on the
server's resident driver, cancelled through its operation tag; Spark checks the slots there.
"""

from __future__ import annotations

import json
import logging

from h3spark.errors import JobFailedError, UsageError
from h3spark.spark import JobGroup, TaggedJob, channel_host, is_connect, server_master, task_slots, translate
from h3spark.train._channel import DriverChannel, TaskChannel
from h3spark.train._procs import RoleFailure
from h3spark.train._task import LaunchFailed, LaunchSpec, run_task, task_error
from h3spark.train._watch import launch_failed, watch_events

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
CANCEL_WAIT_S = 15.0


def run_barrier(spark, spec: LaunchSpec, start_timeout_s: float = START_TIMEOUT_S, printer=print) -> list:
    """Run ``spec`` on ``spec.num_workers`` barrier tasks; return each task's result, in task order."""
    stage = _ConnectStage(spark) if is_connect(spark) else _ClassicStage(spark, spec.num_workers)
    with DriverChannel(stage.host, spec.num_workers) as channel:
        job = stage.job(f"h3spark launch ({spec.num_workers} workers)")
        task_fn = _task_function(spec, *channel.address, channel.token)
        job.start(lambda: stage.run(task_fn, spec.num_workers))

        def cancel() -> None:
            job.cancel()
            job.join(CANCEL_WAIT_S)

        watch_events(channel.events, job.is_alive, spec.num_workers, start_timeout_s, printer, spec.echo, cancel,
                     lambda started: _not_started_message(stage, started, spec.num_workers, start_timeout_s))
    if job.error is not None:
        raise stage.failure(job.error, spec.num_workers) from None
    return _results([json.loads(text) for text in job.result], spec.num_workers)


class _Stage:
    """Where a launch's barrier stage runs: ``host`` (where its tasks reach the driver's channel),
    ``master`` (for messages), ``job``, ``run``, ``slots`` and ``failure``."""

    host = master = ""

    def failure(self, error: BaseException, num_tasks: int) -> BaseException:
        return translate(error, "the launch stage") or JobFailedError(
            f"the launch stage failed: {type(error).__name__}: {error}")


class _ClassicStage(_Stage):
    """The barrier stage as an RDD's, on a SparkContext in this process."""

    def __init__(self, spark, num_tasks: int):
        self.sc = spark.sparkContext
        require_slots(self.sc, num_tasks)
        self.master = self.sc.master
        self.host = self.sc.getConf().get("spark.driver.host", "127.0.0.1")

    def job(self, description: str) -> JobGroup:
        return JobGroup(self.sc, "launch", description)

    def run(self, task_fn, num_tasks: int) -> list[str]:
        return self.sc.parallelize(range(num_tasks), num_tasks).barrier().mapPartitions(task_fn).collect()

    def slots(self) -> str:
        return f"{task_slots(self.sc, wait_s=0)} task slots"


class _ConnectStage(_Stage):
    """The barrier stage as a DataFrame's ``mapInArrow(barrier=True)`` on a Spark Connect server."""

    def __init__(self, spark):
        self.spark = spark
        self.master = f"the Spark Connect server's {server_master(spark)}"
        self.host = channel_host(spark)

    def job(self, description: str) -> TaggedJob:
        return TaggedJob(self.spark, "launch", description)

    def run(self, task_fn, num_tasks: int) -> list[str]:
        rows = self.spark.range(0, num_tasks, 1, num_tasks).mapInArrow(_arrow_task(task_fn), "outcome string",
                                                                         barrier=True).collect()
        return [row.outcome for row in rows]

    def slots(self) -> str:
        return "its task slots"

    def failure(self, error: BaseException, num_tasks: int) -> BaseException:
        if "BarrierJobSlotsNumberCheckFailed" in str(error) or "SPARK-24819" in str(error):
            return UsageError(
                f"the launch needs {num_tasks} task slots at once (one per worker), more than {self.master} has. "
                f"Use fewer workers, or start the server with more cores (h3spark services up connect with "
                f"H3SPARK_CONNECT_CORES={num_tasks}).")
        return super().failure(error, num_tasks)


def _arrow_task(task_fn):
    """``task_fn`` (rows in, JSON texts out) as mapInArrow's function: Arrow batches in, one ``outcome`` column out."""

    def arrow_fn(batches):
        import pyarrow as pa

        rows = [row for batch in batches for row in batch.column(0).to_pylist()]  # read all input first
        for text in task_fn(iter(rows)):
            yield pa.RecordBatch.from_pydict({"outcome": [text]})

    return arrow_fn


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


def _not_started_message(stage, started: int, needed: int, timeout_s: float) -> str:
    return (f"only {started} of {needed} barrier tasks started within {timeout_s:.0f} s on {stage.master} "
            f"({stage.slots()}, some may be busy with other jobs). Free some slots or use fewer workers.")
