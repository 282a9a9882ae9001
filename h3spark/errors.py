"""The exception tree of h3spark.

Every error a user can cause or fix derives from :class:`H3SparkError`; the CLI
prints its message (no traceback) and exits with its ``exit_code``.

    H3SparkError                    exit 2: the user can fix it
    ├── UsageError                  bad command line
    ├── ConfigError                 bad YAML config (all problems, with lines)
    ├── StorageError                a URI, a file system or a publish went wrong
    │   ├── DatasetNotFoundError    no published dataset under that URI
    │   └── DatasetExistsError      refusing to overwrite a published dataset
    ├── DataError                   rows or schemas that do not fit
    │   ├── EnvelopeError           an actor message refused by its decoder (.reason)
    │   └── ExpectationError        exit 1: the input violates preprocess.validate (.violations)
    ├── ServiceError                a local Kafka / HDFS / Spark service
    ├── DependencyError             an optional package or tool is missing
    └── JobFailedError              exit 1: work started and failed on a worker
        │                           .failures: one TaskFailure per failed rank, trial or slot
        └── TrialError              one trial of an experiment

A JobFailedError from several ranks, trials or slots is raised once, on the driver, and
keeps each one in ``failures``: a list of :class:`TaskFailure` (what failed and where, the
exception type and message, the tail of its output), as its message lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "H3SparkError",
    "UsageError",
    "ConfigError",
    "StorageError",
    "DatasetNotFoundError",
    "DatasetExistsError",
    "DataError",
    "EnvelopeError",
    "ExpectationError",
    "ServiceError",
    "DependencyError",
    "JobFailedError",
    "TrialError",
    "TaskFailure",
    "missing_dependency",
]


class H3SparkError(Exception):
    """Root of every error h3spark raises on purpose."""

    exit_code = 2


class UsageError(H3SparkError):
    """The command line is wrong."""


class ConfigError(H3SparkError):
    """A config file is wrong; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"invalid config {source} ({count} {noun})"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class StorageError(H3SparkError):
    """A URI, a file system call or an atomic publish failed."""


class DatasetNotFoundError(StorageError):
    """No complete (published) dataset exists under a URI."""


class DatasetExistsError(StorageError):
    """A publish would replace an existing dataset without ``overwrite``."""


class DataError(H3SparkError):
    """Data does not match what is expected (schema, shape, bad rows)."""


class EnvelopeError(DataError):
    """An actor message that its decoder refuses; ``reason`` is a short code (``oversized``,
    ``unknown_version``, ``malformed``, ``bad_chunk``, ...) that goes into the dead letter's headers."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):  # both arguments survive a trip between processes
        return type(self), (self.reason, str(self))


class ExpectationError(DataError):
    """The input violates expectations of ``preprocess.validate``; ``violations`` holds one line per violated
    expectation (column, expectation, observed value, bound). Exit 1: the checks ran, the data failed them."""

    exit_code = 1

    def __init__(self, message: str, violations: list[str] | tuple = ()):
        super().__init__(message)
        self.violations = list(violations)

    def __reduce__(self):
        return type(self), (str(self), self.violations)


class ServiceError(H3SparkError):
    """A local service (Kafka, HDFS, Spark standalone) failed to start or stop."""


class DependencyError(H3SparkError):
    """An optional dependency or external tool is missing."""


class JobFailedError(H3SparkError):
    """Work started and failed on an executor, worker or trial."""

    exit_code = 1
    failures: list[TaskFailure] | tuple = ()  # what an instance built without __init__ (e.g. unpickled) has

    def __init__(self, message: str = "", failures: list[TaskFailure] | tuple = ()):
        super().__init__(message)
        self.failures = list(failures)

    @classmethod
    def of(cls, summary: str, failures: list[TaskFailure]) -> JobFailedError:
        """One error naming every failure, in order: ``summary`` then one block per failure.

            >>> JobFailedError.of("the launch failed on 2 of 2 tasks", [failure_0, failure_1])
        """
        blocks = ["  " + failure.describe().replace("\n", "\n  ") for failure in failures]
        return cls("\n".join([f"{summary}:", *blocks]) if blocks else summary, failures)


class TrialError(JobFailedError):
    """A trial of an experiment failed."""


@dataclass(frozen=True)
class TaskFailure:
    """One failed rank, trial, slot or Spark task, as the driver reports it."""

    kind: str             # what failed: "worker", "server", "scheduler", "task", "trial", "slot"
    index: int | None     # its rank, trial id, slot or partition; None when Spark did not say
    error_type: str = ""  # the exception's type, e.g. "RuntimeError"; "" when none is known
    message: str = ""     # the exception's message
    tail: str = ""        # the last lines of its output or traceback
    host: str = ""
    exit: str = ""        # how its process ended ("exited with code 3"); "" when that is not the story

    def describe(self) -> str:
        where = self.kind + ("" if self.index is None else f" {self.index}")
        where += (f" on host {self.host}" if self.host else "") + (f" {self.exit}" if self.exit else "")
        what = ": ".join(part for part in (self.error_type, self.message) if part)
        lines = [f"{where}: {what}" if what else where]
        lines += [f"    | {line}" for line in self.tail.splitlines()]
        return "\n".join(lines)

    @classmethod
    def from_exception(cls, kind: str, index: int | None, error: BaseException, host: str = "",
                       tail_lines: int = 12) -> TaskFailure:
        """A failure from an exception caught where it happened: its type, message and traceback's tail."""
        import traceback

        lines = "".join(traceback.format_exception(error)).rstrip().splitlines()
        return cls(kind, index, type(error).__name__, str(error), "\n".join(lines[-tail_lines:]), host)

    @classmethod
    def from_traceback(cls, kind: str, index: int | None, text: str, host: str = "", tail_lines: int = 12) -> TaskFailure:
        """A failure from the text of a Python traceback (a trial's, a Spark task's): the exception's type
        and message from its last lines, in Python's own format; text without a traceback is the message."""
        start = text.rfind("Traceback (most recent call last):")
        if start < 0:
            return cls(kind, index, "", text.strip(), "", host)
        lines = text[start:].rstrip().splitlines()
        frames = [number for number, line in enumerate(lines) if line.startswith("  File ")]
        body = [line for line in lines[frames[-1] + 1 if frames else 1:] if not line.startswith("    ")] or [""]
        error_type, _, first = body[0].partition(": ")
        message = "\n".join([first, *body[1:]]).strip()
        return cls(kind, index, error_type.rsplit(".", 1)[-1].strip(), message, "\n".join(lines[-tail_lines:]), host)


def missing_dependency(package: str, purpose: str, extra: str | None = None) -> DependencyError:
    """Build the error for a lazily imported package that is not installed."""
    hint = f"pip install 'h3spark[{extra}]'" if extra else f"pip install {package}"
    return DependencyError(f"{purpose} needs the '{package}' package, which is not installed. Install it with: {hint}")
