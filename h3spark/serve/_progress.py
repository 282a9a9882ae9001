"""Run a Spark action under its own job group and report its tasks as they finish.

    >>> rows = watched(spark, "predict", "h3spark predict digits", lambda: frame.collect(),
    ...                lambda done, total: print(f"{done} of {total} tasks done"))

The action runs in the calling thread (pyspark's Ctrl-C handler cancels its jobs there, and the
thread keeps its JVM thread, with the jars ``ADD JAR`` put on that thread's class loader); a
daemon thread polls Spark's status tracker for the group's tasks.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Callable

logger = logging.getLogger(__name__)

POLL_S = 1.0
_GROUP_PROPERTY = "spark.jobGroup.id"
Progress = Callable[[int, int], None]


def watched(spark, kind: str, description: str, action: Callable[[], Any], progress: Progress | None = None) -> Any:
    """``action()``'s result; ``progress(done, total)`` is called (from another thread) whenever the count of
    finished tasks changes, and with (all, all) when the action returned. The action's own error is raised here
    (translate it with ``spark_errors``)."""
    sc = spark.sparkContext
    group = f"h3spark-{kind}-{uuid.uuid4().hex[:12]}"
    sc.setJobGroup(group, description, interruptOnCancel=True)
    stop = threading.Event()
    reporter = threading.Thread(target=_report, args=(sc, group, description, progress, stop), daemon=True,
                                name=f"{group}-progress")
    reporter.start()
    try:
        result = action()
    finally:
        stop.set()
        reporter.join(10.0)
        sc.setLocalProperty(_GROUP_PROPERTY, None)
    total = task_counts(sc, group)[1]  # the action returned: its tasks are done (Spark's counts may lag behind)
    if total:
        _tell(description, progress, total, total)
    return result


def _report(sc, group: str, description: str, progress: Progress | None, stop: threading.Event) -> None:
    last = (0, 0)
    while not stop.wait(POLL_S):
        counts = task_counts(sc, group)
        if counts != last and counts[1]:
            last = counts
            _tell(description, progress, *counts)


def _tell(description: str, progress: Progress | None, done: int, total: int) -> None:
    logger.info("%s: %d of %d tasks done", description, done, total)
    if progress is not None:
        progress(done, total)


def task_counts(sc, group: str) -> tuple[int, int]:
    """(finished, all) tasks of the stages of the group's jobs that Spark still knows."""
    tracker = sc.statusTracker()
    done = total = 0
    for job_id in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job_id)
        for stage_id in info.stageIds if info is not None else ():
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                done, total = done + stage.numCompletedTasks, total + stage.numTasks
    return done, total
