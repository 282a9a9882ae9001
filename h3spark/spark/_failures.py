"""Spark's failures in h3spark's exception tree: translated by exception type, in one table.

    >>> with spark_errors("a preprocessing task"):
    ...     frame.mapInArrow(carrying_errors(transform), schema).collect()

A task function wrapped by :func:`carrying_errors` sends its own exception to the driver
whole: one JSON marker line (type, message, attributes, partition, host, traceback tail)
in the message of the error Spark ships. The driver raises the same h3spark class with the
same message (a StorageError naming host and port stays one), or a JobFailedError naming
the task, the exception type and the tail of its traceback. A failure from the JVM is
walked along its causes; the first cause whose Java class (or a superclass) is in
``JAVA_ERROR_MAP`` decides the class, else the root cause is named. A Python worker that died
(out of memory, a native crash, ``os._exit``) reaches the driver as Spark's "Python worker exited
unexpectedly (crashed)" over a ``java.io.EOFException`` (an IOException, yet no storage failure):
it is a JobFailedError saying the worker crashed. The Java stack and the full Python traceback
go to the debug log, never into the message.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import sys
import traceback
from contextlib import contextmanager
from dataclasses import asdict

from h3spark.errors import DataError, DependencyError, H3SparkError, JobFailedError, StorageError, TaskFailure

logger = logging.getLogger(__name__)

MARKER = "H3SPARK_TASK_ERROR"
TAIL_LINES = 12
_MESSAGE_CHARS = 4000
_PYTHON_EXCEPTION = "org.apache.spark.api.python.PythonException"

# The Java class of a cause (or one of its superclasses) -> the h3spark class. Causes are looked
# at from the outermost in; the first one found here wins.
JAVA_ERROR_MAP: dict[str, type[H3SparkError]] = {
    "java.io.EOFException": JobFailedError,  # before its superclass IOException: a stream cut off, mostly a dead Python worker
    "org.apache.kafka.common.errors.UnknownTopicOrPartitionException": DataError,
    "org.apache.kafka.common.errors.TimeoutException": DataError,
    "java.io.IOException": StorageError,  # file systems: HDFS blocks and DataNodes, missing files, refused connections
    "java.sql.SQLException": StorageError,  # a database over JDBC: credentials, missing tables, refused rows
}
# Spark's error condition of a captured exception -> the h3spark class and a sentence over the
# condition's message parameters.
CONDITION_MAP: dict[str, tuple[type[H3SparkError], str]] = {
    "PATH_NOT_FOUND": (DataError, "{path} does not exist"),
    "DATA_SOURCE_NOT_FOUND": (DependencyError, "Spark has no data source {provider!r} on its classpath"),
    "KAFKA_DATA_SOURCE_NOT_ENABLED": (DependencyError, "Spark has no data source 'kafka' on its classpath"),
}
# What Spark says when a Python worker's process died (Spark 4.3: a SparkException over an empty EOFException).
WORKER_CRASHED = "Python worker exited unexpectedly"
_EOF_EXCEPTION = "java.io.EOFException"
_CRASH_SENTENCE = ("the Python worker crashed{where}: its process died without a Python exception (out of memory? "
                   "a native crash such as a segfault? os._exit?). Look for the cause in the executor's log (or the "
                   "kernel's for an OOM kill); spark.python.worker.faulthandler.enabled=true adds a native crash's "
                   "Python stack")
_LOST_TASK = re.compile(r"Lost task (\S+) in stage (\S+) \(TID \d+\) \((\S+) executor ([^)]+)\)")


class CarriedError(RuntimeError):
    """Raised in a task in place of its own exception; the message is the marker line."""


def carrying_errors(fn):
    """Wrap a task function (iterator in, iterator out) so that its exception reaches the driver whole."""

    @functools.wraps(fn)
    def task(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except Exception as error:
            raise CarriedError(marker_line(error)) from error

    return task


def marker_line(error: BaseException) -> str:
    """The one-line JSON form of a task's exception (what :func:`carried_error` reads back)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return f"{MARKER} " + json.dumps({
        "types": [f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__],
        "message": str(error)[:_MESSAGE_CHARS], "attributes": _json_attributes(error),
        "failures": [asdict(failure) for failure in getattr(error, "failures", ()) if isinstance(failure, TaskFailure)],
        "task": None if context is None else context.partitionId(), "host": socket.gethostname(),
        "traceback": TaskFailure.from_exception("task", None, error, tail_lines=TAIL_LINES).tail})


def _json_attributes(error: BaseException) -> dict:
    attributes = {}
    for name, value in vars(error).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        attributes[name] = value
    return attributes


@contextmanager
def spark_errors(what: str, hints: dict[type, str] | None = None):
    """Translate what a Spark call raises into h3spark's tree at this boundary (see the module docstring);
    ``hints`` adds a sentence on how to fix it to an error of that class (or a subclass)."""
    try:
        yield
    except Exception as error:
        translated = translate(error, what, hints)
        if translated is None:
            raise
        clear_progress_bar()
        logger.debug("%s failed; Spark's error in full:\n%s", what, _full_text(error))
        raise translated from None


def translate(error: BaseException, what: str, hints: dict[type, str] | None = None) -> BaseException | None:
    """The h3spark error for a failure of a Spark call; None when ``error`` is not Spark's."""
    if isinstance(error, H3SparkError) or not _is_spark_error(error):
        return None
    carried = carried_error(_text(error), what)
    if carried is not None:
        return carried
    causes = java_causes(error)
    if any(_PYTHON_EXCEPTION in names for names, _ in causes):
        return _python_failure(_text(error), what)
    condition = _condition(error)
    cls, cause = classify(causes or [((type(error).__name__,), str(error))], condition,
                          error.getMessageParameters() if condition else None)
    hint = next((text for kind, text in (hints or {}).items() if issubclass(cls, kind)), "")
    return cls(f"{what} failed: {cause.rstrip('.')}." + (f" {hint}" if hint else ""))


def classify(causes: list[tuple[tuple[str, ...], str]], condition: str | None = None,
             parameters: dict | None = None) -> tuple[type[H3SparkError], str]:
    """The h3spark class and the cause's sentence of a JVM failure: by Spark's error ``condition``
    (its sentence over the condition's ``parameters``), else by the first cause, outermost first,
    whose class or a superclass is in JAVA_ERROR_MAP, else a JobFailedError naming the root cause."""
    if condition in CONDITION_MAP:
        cls, sentence = CONDITION_MAP[condition]
        try:
            return cls, sentence.format_map(parameters or {})
        except (KeyError, ValueError):
            return cls, _first_lines(causes[0][1]) if causes else condition
    crash = _worker_crash(causes)
    if crash is not None:
        return JobFailedError, crash
    for names, message in causes:
        cls = next((JAVA_ERROR_MAP[name] for name in names if name in JAVA_ERROR_MAP), None)
        if cls is not None:
            return cls, f"{_short(names[0])}: {_first_lines(message)}"
    names, message = causes[-1] if causes else (("UnknownError",), "")
    return JobFailedError, f"{_short(names[0])}: {_first_lines(message)}"


def _worker_crash(causes: list[tuple[tuple[str, ...], str]]) -> str | None:
    """The sentence for a Python worker that died (see the module docstring); None for any other failure."""
    crashed = any(WORKER_CRASHED in message for _, message in causes)
    if not crashed and not any(names[0] == _EOF_EXCEPTION and not message.strip() for names, message in causes):
        return None
    lost = next((found for _, message in causes if (found := _LOST_TASK.search(message))), None)
    where = f" (task {lost[1]} in stage {lost[2]} on {lost[3]}, executor {lost[4]})" if lost else ""
    return _CRASH_SENTENCE.format(where=where)


def carried_error(text: str, what: str) -> BaseException | None:
    """The task's own exception from its marker line in ``text``; None without one, or when the
    marker cannot be read (e.g. cut off): the caller then translates the failure as any other."""
    found = re.findall(rf"{MARKER} (\{{.*\}})\s*$", text, flags=re.MULTILINE)
    if not found:
        return None
    try:
        return _rebuilt(json.loads(found[-1]), what)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        logger.debug("ignored an unreadable %s marker (%s: %s): %.200s", MARKER, type(error).__name__, error, found[-1])
        return None


def _rebuilt(carried: dict, what: str) -> BaseException:
    """The exception a marker describes: the same h3spark class (attributes and failures restored,
    ``__init__`` skipped, as its arguments are unknown), else a JobFailedError naming the task."""
    failures = [TaskFailure(**fields) for fields in carried.get("failures") or ()]
    cls = _loaded_h3spark_class(carried["types"])
    if cls is not None:
        error = cls.__new__(cls)
        Exception.__init__(error, carried["message"])
        error.__dict__.update(carried["attributes"])
        if issubclass(cls, JobFailedError):
            error.failures = failures
        return error
    failure = TaskFailure("task", carried["task"], _short(carried["types"][0]), carried["message"],
                          carried["traceback"], carried["host"])
    return JobFailedError.of(f"{what} failed", [failure])


def _loaded_h3spark_class(names: list[str]) -> type | None:
    """The first of ``names`` that is an h3spark error class this process has loaded (nothing is imported)."""
    known, pending = {}, [H3SparkError]
    while pending:
        cls = pending.pop()
        known[f"{cls.__module__}.{cls.__qualname__}"] = cls
        pending += cls.__subclasses__()
    return next((known[name] for name in names if name in known), None)


def _python_failure(text: str, what: str) -> JobFailedError:
    """A task's Python exception without a marker (a function not wrapped): its type and message
    from the traceback Spark shipped."""
    return JobFailedError.of(f"{what} failed", [TaskFailure.from_traceback("task", None, text, tail_lines=TAIL_LINES)])


def java_causes(error: BaseException) -> list[tuple[tuple[str, ...], str]]:
    """The Java causes of a Spark failure, outermost first: (class and superclass names, message)."""
    throwable = getattr(error, "java_exception", None)  # Py4JJavaError
    if throwable is None:
        throwable = getattr(error, "_origin", None)  # pyspark's captured exceptions keep the Java one here
    causes = []
    while throwable is not None and len(causes) < 20:
        names, cls = [], throwable.getClass()
        while cls is not None:
            names.append(cls.getName())
            cls = cls.getSuperclass()
        causes.append((tuple(names), throwable.getMessage() or ""))
        throwable = throwable.getCause()
    return causes


def _is_spark_error(error: BaseException) -> bool:
    """A JVM failure through py4j (classic) or a Spark Connect server's (its Java causes are not sent
    back: the message carries the class names and the tasks' Python tracebacks)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors.exceptions.captured import CapturedException

    if isinstance(error, (Py4JJavaError, CapturedException)):
        return True
    connect = sys.modules.get("pyspark.errors.exceptions.connect")
    return connect is not None and isinstance(error, connect.SparkConnectException)


def _condition(error: BaseException) -> str | None:
    getter = getattr(error, "getCondition", None)
    return getter() if callable(getter) else None


def _text(error: BaseException) -> str:
    return str(error)


def _full_text(error: BaseException) -> str:
    stack = getattr(error, "_stackTrace", "")  # a captured exception's JVM stack
    return "".join(traceback.format_exception(error)) + (f"\nJVM stacktrace:\n{stack}" if stack else "")


def _short(java_or_python_name: str) -> str:
    return java_or_python_name.rsplit(".", 1)[-1].rsplit("$", 1)[-1]


def _first_lines(message: str, count: int = 3) -> str:
    lines = [line for line in message.strip().splitlines() if not line.lstrip().startswith("at ")]
    return "\n".join(lines[:count])[:_MESSAGE_CHARS]


def clear_progress_bar() -> None:
    """Erase Spark's console progress bar, which a failed job leaves on the line where the error is printed."""
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:
        return
    bar = sc._jsc.sc().progressBar()
    if bar.isDefined():
        bar.get().finishAll()
