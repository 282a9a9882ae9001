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
    ├── ServiceError                a local Kafka / HDFS / Spark service
    ├── DependencyError             an optional package or tool is missing
    └── JobFailedError              exit 1: work started and failed on a worker
        └── TrialError              one trial of an experiment
"""

from __future__ import annotations

__all__ = [
    "H3SparkError",
    "UsageError",
    "ConfigError",
    "StorageError",
    "DatasetNotFoundError",
    "DatasetExistsError",
    "DataError",
    "ServiceError",
    "DependencyError",
    "JobFailedError",
    "TrialError",
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


class ServiceError(H3SparkError):
    """A local service (Kafka, HDFS, Spark standalone) failed to start or stop."""


class DependencyError(H3SparkError):
    """An optional dependency or external tool is missing."""


class JobFailedError(H3SparkError):
    """Work started and failed on an executor, worker or trial."""

    exit_code = 1


class TrialError(JobFailedError):
    """A trial of an experiment failed."""


def missing_dependency(package: str, purpose: str, extra: str | None = None) -> DependencyError:
    """Build the error for a lazily imported package that is not installed."""
    hint = f"pip install 'h3spark[{extra}]'" if extra else f"pip install {package}"
    return DependencyError(f"{purpose} needs the '{package}' package, which is not installed. Install it with: {hint}")
