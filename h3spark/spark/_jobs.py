"""A Spark job run from a thread of the driver under its own job group, so it can be cancelled.

    >>> job = JobGroup(spark.sparkContext, "launch", "h3spark launch (2 workers)")
    >>> job.start(lambda: rdd.collect())
    >>> job.cancel()        # from any thread: Spark kills the group's running tasks
    >>> job.join(15); job.result, job.error

As hyperopt runs each trial: the caller keeps its own thread free to watch, print and cancel.
A Spark Connect session has no SparkContext: ``TaggedJob(spark, ...)`` does the same with the
session's operation tags (``addTag`` in the job's thread, ``interruptTag`` to cancel).
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Callable

logger = logging.getLogger(__name__)


class JobGroup:
    """The jobs of one action, run in a daemon thread under the job group ``id``."""

    def __init__(self, sc, kind: str, description: str):
        self.sc, self.description = sc, description
        self.id = f"h3spark-{kind}-{uuid.uuid4().hex[:12]}"
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, action: Callable[[], Any]) -> None:
        """Run ``action`` (the Spark calls) in a new thread, under this job group."""
        self._thread = threading.Thread(target=self._run, args=(action,), name=self.id, daemon=True)
        self._thread.start()

    def _run(self, action: Callable[[], Any]) -> None:
        try:
            self._enter()
            self.result = action()
        except BaseException as error:  # noqa: BLE001 - kept for whoever joins (a cancel ends here too)
            self.error = error

    def _enter(self) -> None:
        """Put the calling thread's Spark jobs under this group (run in the job's thread)."""
        self.sc.setJobGroup(self.id, self.description, interruptOnCancel=True)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def cancel(self) -> None:
        """Cancel the group's jobs; their running tasks are interrupted (Python workers killed)."""
        logger.info("cancelling job group %s", self.id)
        self.sc.cancelJobGroup(self.id)

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)


class TaggedJob(JobGroup):
    """A JobGroup on a session's operation tags, for a Spark Connect session (works on a classic one too).
    Connect's tags are per thread, as job groups are; the server interrupts the tagged operations' tasks."""

    def __init__(self, spark, kind: str, description: str):
        super().__init__(None, kind, description)
        self.spark = spark

    def _enter(self) -> None:
        self.spark.addTag(self.id)

    def cancel(self) -> None:
        logger.info("interrupting the operations tagged %s", self.id)
        self.spark.interruptTag(self.id)
