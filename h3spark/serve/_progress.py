"""Run a Spark action under its own job group and report its tasks as they finish.

    >>> rows = watched(spark, "predict", "h3spark predict digits", lambda: frame.collect(),
    ...                lambda done, total: print(f"{done} of {total} tasks done"))

Ctrl-C cancels the group's jobs (Spark kills their running tasks) before it propagates.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from h3spark.spark import JobGroup

logger = logging.getLogger(__name__)

POLL_S = 1.0
Progress = Callable[[int, int], None]


def watched(spark, kind: str, description: str, action: Callable[[], Any], progress: Progress | None = None) -> Any:
    """``action()``'s result; ``progress(done, total)`` is called whenever the count of finished tasks changes.
    The action's own error is raised here (translate it with ``spark_errors`` around this call)."""
    sc = spark.sparkContext
    job = JobGroup(sc, kind, description)
    job.start(action)
    last = (0, 0)
    try:
        while not job.finished():
            job.join(POLL_S)
            counts = task_counts(sc, job.id)
            if counts != last and counts[1]:
                last = counts
                logger.info("%s: %d of %d tasks done", description, *counts)
                if progress is not None:
                    progress(*counts)
    except KeyboardInterrupt:
        job.cancel()
        job.join(30.0)
        raise
    if job.error is not None:
        raise job.error
    return job.result


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
