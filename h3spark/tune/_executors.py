"""Where slots run: Spark tasks under a cancellable job group, or threads (the in-process twin).

Both run the same :func:`run_slot`; the thread executor lets unit tests exercise the
dispatcher, the forked trials and the results without a JVM. A slot that fails reports
its failure instead of raising, so Spark does not abort the other slots at the first one;
``join`` raises one JobFailedError naming every failed slot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import socket
import sys
import threading

from h3spark.errors import JobFailedError, TaskFailure
from h3spark.spark import JobGroup, task_slots, translate
from h3spark.tune._slot import run_slot, task_gpus

logger = logging.getLogger(__name__)
_PYTHON_EXEC_LOCK = threading.Lock()


class ThreadExecutor:
    """Slots as threads of this process."""

    host = "127.0.0.1"

    def default_slots(self) -> int:
        return 2

    def start(self, slots: int, train_fn, setup: dict) -> None:
        self.slots, self.failures = slots, []
        self._threads = [threading.Thread(target=self._slot, args=(slot, train_fn, setup), daemon=True) for slot in range(slots)]
        for thread in self._threads:
            thread.start()

    def _slot(self, slot, train_fn, setup):
        try:
            run_slot(slot, train_fn, setup)
        except Exception as error:  # noqa: BLE001 - every slot's failure is raised by join()
            self.failures.append(TaskFailure.from_exception("slot", slot, error, self.host))

    def finished(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def cancel(self) -> None:
        """Slots stop when the closed dispatcher answers their next request."""

    def join(self, timeout_s: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout_s)
        raise_slot_failures(self.failures, self.slots)


class SparkExecutor:
    """Slots as the tasks of one Spark job (one partition each) under its own job group."""

    def __init__(self, spark):
        self._sc = spark.sparkContext
        self.host = self._sc.getConf().get("spark.driver.host", "127.0.0.1")
        self.python = worker_python(self._sc)
        self._job: JobGroup | None = None
        self.slots = 0

    def default_slots(self) -> int:
        """The cluster's task slots (Spark's count: executor cores over spark.task.cpus, GPUs included)."""
        return max(1, task_slots(self._sc))

    def start(self, slots: int, train_fn, setup: dict) -> None:
        self.slots = slots
        self._job = JobGroup(self._sc, "experiment", f"h3spark experiment: {slots} trial slots")
        slot_fn = functools.partial(_spark_slot, train_fn=train_fn, setup=setup)

        def run_slots() -> list:
            rdd = self._sc.parallelize(range(slots), slots).mapPartitionsWithIndex(slot_fn)
            with _python_exec(self._sc, self.python):
                rdd._jrdd  # wraps slot_fn now, with the slots' interpreter
            return rdd.collect()

        self._job.start(run_slots)

    def finished(self) -> bool:
        return self._job is not None and self._job.finished()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def join(self, timeout_s: float | None = None) -> None:
        if self._job is None:
            return
        self._job.join(timeout_s)
        error = self._job.error
        if error is not None:
            what = f"the experiment's Spark job (job group {self._job.id})"
            raise translate(error, what) or JobFailedError(f"{what} failed: {type(error).__name__}: {error}") from None
        failures = [TaskFailure(**item["failure"]) for item in self._job.result or [] if "failure" in item]
        raise_slot_failures(failures, self.slots)


def raise_slot_failures(failures: list[TaskFailure], slots: int) -> None:
    """One JobFailedError naming every failed slot, if any failed."""
    if failures:
        failures = sorted(failures, key=lambda failure: failure.index)
        raise JobFailedError.of(f"{len(failures)} of {slots} experiment slots failed", failures)


def worker_python(sc) -> str:
    """The interpreter of the experiment's slots: ``spark.pyspark.python`` when it names one
    other than the driver's (e.g. ``.venv-torch/bin/python``, relative to the driver's working
    directory), else the session's own (PYSPARK_PYTHON). An in-process SparkContext reads only
    PYSPARK_PYTHON, so without this the conf would be ignored outside spark-submit."""
    python = sc.getConf().get("spark.pyspark.python", None)
    if python and os.sep in python and not os.path.isabs(python):
        python = os.path.abspath(python)
    if not python or python == sys.executable:  # get_spark sets the conf to the driver's by default
        return sc.pythonExec
    return python


@contextlib.contextmanager
def _python_exec(sc, python: str):
    # PySpark takes a Python function's interpreter from sc.pythonExec when it wraps the function;
    # switch it for this one RDD only, and back, so the session's other jobs keep theirs.
    with _PYTHON_EXEC_LOCK:
        previous, sc.pythonExec = sc.pythonExec, python
        try:
            yield
        finally:
            sc.pythonExec = previous


def _spark_slot(index, _rows, train_fn, setup):
    try:
        yield run_slot(index, train_fn, setup, task_gpus())
    except Exception as error:  # noqa: BLE001 - reported, not raised: Spark would abort the other slots
        yield {"slot": index, "failure": dataclasses.asdict(TaskFailure.from_exception("slot", index, error, socket.gethostname()))}
