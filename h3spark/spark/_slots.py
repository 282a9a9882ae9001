"""Task slots: how many Spark tasks the cluster runs at once (what a barrier stage may use).

    >>> task_slots(spark.sparkContext)
    2
"""

from __future__ import annotations

import time

# As Spark's own spark.scheduler.maxRegisteredResourcesWaitingTime: a standalone cluster's executor
# JVMs start without the driver's class-data archive, and on a busy 2-core machine they registered
# more than 10 s after the (now faster) driver's session was ready. The wait ends as soon as the
# slots are there.
EXECUTOR_WAIT_S = 30.0
_POLL_S = 0.5


def task_slots(sc, needed: int = 1, wait_s: float = EXECUTOR_WAIT_S) -> int:
    """Spark's own count of the tasks that can run at once now (executor cores over
    ``spark.task.cpus``, task resources such as GPUs included). On a cluster master,
    executors still registering get up to ``wait_s`` to bring the count to ``needed``."""
    slots = _concurrent_tasks(sc)
    deadline = time.monotonic() + wait_s
    while slots < needed and not _in_process(sc.master) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        slots = _concurrent_tasks(sc)
    return slots


def _in_process(master: str) -> bool:
    """``local`` and ``local[N]`` run tasks in the driver's JVM, so there are no executors to wait for;
    ``local-cluster[...]`` starts executors that register like a cluster's."""
    return master == "local" or master.startswith("local[")


def _concurrent_tasks(sc) -> int:
    jsc = sc._jsc.sc()
    profile = jsc.resourceProfileManager().defaultResourceProfile()
    return int(jsc.maxNumConcurrentTasks(profile))
