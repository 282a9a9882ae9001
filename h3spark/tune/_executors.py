"""Where slots run: Spark tasks under a cancellable job group, or threads (the in-process twin).

Both run the same :func:`run_slot`; the thread executor lets unit tests exercise the
dispatcher, the forked trials and the results without a JVM.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import traceback
import uuid

from h3spark.errors import JobFailedError
from h3spark.tune._slot import run_slot, task_gpus

logger = logging.getLogger(__name__)
_PYTHON_EXEC_LOCK = threading.Lock()


class ThreadExecutor:
    """Slots as threads of this process."""

    host = "127.0.0.1"

    def default_slots(self) -> int:
        return 2

    def start(self, slots: int, train_fn, setup: dict) -> None:
        self.errors: list[str] = []
        self._threads = [threading.Thread(target=self._slot, args=(slot, train_fn, setup), daemon=True) for slot in range(slots)]
        for thread in self._threads:
            thread.start()

    def _slot(self, slot, train_fn, setup):
        try:
            run_slot(slot, train_fn, setup)
        except Exception:
            self.errors.append(traceback.format_exc())

    def finished(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def cancel(self) -> None:
        """Slots stop when the closed dispatcher answers their next request."""

    def join(self, timeout_s: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout_s)
        if self.errors:
            raise JobFailedError(f"{len(self.errors)} experiment slot(s) failed:\n{self.errors[0][-2000:]}")


class SparkExecutor:
    """Slots as the tasks of one Spark job (one partition each) under its own job group."""

    def __init__(self, spark):
        self._sc = spark.sparkContext
        self.host = self._sc.getConf().get("spark.driver.host", "127.0.0.1")
        self.job_group = f"h3spark-experiment-{uuid.uuid4().hex[:12]}"
        self.python = worker_python(self._sc)
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def default_slots(self) -> int:
        """The cluster's task slots: default parallelism over CPUs per task."""
        cpus = int(self._sc.getConf().get("spark.task.cpus", "1"))
        return max(1, self._sc.defaultParallelism // cpus)

    def start(self, slots: int, train_fn, setup: dict) -> None:
        self._thread = threading.Thread(target=self._run, args=(slots, train_fn, setup), name="h3spark-experiment-job", daemon=True)
        self._thread.start()

    def _run(self, slots, train_fn, setup) -> None:
        self._sc.setJobGroup(self.job_group, f"h3spark experiment: {slots} trial slots", interruptOnCancel=True)
        slot_fn = functools.partial(_spark_slot, train_fn=train_fn, setup=setup)
        try:
            rdd = self._sc.parallelize(range(slots), slots).mapPartitionsWithIndex(slot_fn)
            with _python_exec(self._sc, self.python):
                rdd._jrdd  # wraps slot_fn now, with the slots' interpreter
            rdd.collect()
        except BaseException as error:  # reported by join(); a cancel also ends up here
            self.error = error

    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def cancel(self) -> None:
        logger.info("cancelling job group %s", self.job_group)
        self._sc.cancelJobGroup(self.job_group)

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.error is not None:
            tail = str(self.error).strip().splitlines()[-15:]
            raise JobFailedError("the experiment's Spark job failed (job group " f"{self.job_group}):\n" + "\n".join(tail))


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
    yield run_slot(index, train_fn, setup, task_gpus())
