"""Spark's copies of a task failure, kept off the console: the error the driver raises says it once.

A failed task reaches the user as one clear error (:func:`h3spark.spark.spark_errors`), whose
full text, Java stack included, goes to the debug log. Without this, local Spark prints the
same failure first: the executor's traceback with its Java stack ("Exception in task"), again
as "Lost task", then "aborting job", and pyspark logs a captured exception's query context
as JSON on stderr. A session at log level INFO or DEBUG keeps all of them.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# log4j loggers that print a failed task's traceback and Java stack on the driver (local mode
# runs the executor in the driver's JVM); their failures end as the driver's error anyway.
TASK_FAILURE_LOGGERS = ("org.apache.spark.executor.Executor", "org.apache.spark.scheduler.TaskSetManager")
# pyspark's loggers with their own stderr handler, for the query context of a captured exception
PYSPARK_CONTEXT_LOGGERS = ("DataFrameQueryContextLogger", "SQLQueryContextLogger")


def quiet_task_failures(sc, log_level: str) -> None:
    """Keep Spark's own copies of a task failure off the console unless ``log_level`` asks for detail."""
    if log_level not in ("WARN", "ERROR"):
        return
    log4j = sc._jvm.org.apache.logging.log4j
    for name in TASK_FAILURE_LOGGERS:
        log4j.core.config.Configurator.setLevel(name, log4j.Level.OFF)
    _route_to_debug(PYSPARK_CONTEXT_LOGGERS)


class _ToDebug(logging.Filter):
    """Re-log a record at DEBUG on h3spark's logger, and drop it from its own (stderr) handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger.debug("%s: %s", record.name, record.getMessage(), exc_info=record.exc_info)
        return False


def _route_to_debug(names: tuple[str, ...]) -> None:
    from pyspark.logger import PySparkLogger

    for name in names:
        target = PySparkLogger.getLogger(name)  # created as pyspark creates it, so its calls keep working
        if not any(isinstance(existing, _ToDebug) for existing in target.filters):
            target.addFilter(_ToDebug())
