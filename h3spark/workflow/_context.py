"""What a running config shares between its stages."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from h3spark.config import DEFAULT_WORKDIR, WORKDIR_PATHS, H3SparkConfig, escape_message, escapes_workdir
from h3spark.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass
class RunContext:
    """The config, the resolved workdir, a lazy SparkSession, each stage's outputs and where progress lines go."""

    config: H3SparkConfig
    workdir: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)
    started_s: float = field(default_factory=time.monotonic)
    progress: Callable[[str], None] = logger.info
    _spark: Any = None

    @classmethod
    def create(cls, config: H3SparkConfig, workdir: str | Path | None = None,
               progress: Callable[[str], None] | None = None) -> "RunContext":
        """Choose and make the workdir, resolve the config's paths against it (once, here: stages
        get absolute URIs), and start the summary with where each path went. ``progress`` gets the
        stages' progress lines (default: this module's logger, at INFO)."""
        chosen = choose_workdir(config, workdir)
        resolved, paths = resolve_paths(config, chosen)
        chosen.mkdir(parents=True, exist_ok=True)
        from h3spark.storage import configure

        configure(webhdfs_url=config.storage.webhdfs_url, user=config.storage.hdfs_user)
        return cls(config=resolved, workdir=chosen, summary=[("workdir", str(chosen)), *paths],
                   progress=progress or logger.info)

    @property
    def spark(self):
        if self._spark is None:
            from h3spark.spark import get_spark

            self._spark = get_spark(self.config.spark)
        return self._spark

    @property
    def has_spark(self) -> bool:
        return self._spark is not None

    def report(self, label: str, value: Any) -> None:
        """Add a line to the summary printed at the end."""
        self.summary.append((label, str(value)))


def choose_workdir(config: H3SparkConfig, workdir: str | Path | None = None) -> Path:
    """``workdir`` (e.g. ``--workdir``), else the config's ``workdir:``, else DEFAULT_WORKDIR; absolute."""
    return Path(workdir or config.workdir or DEFAULT_WORKDIR).expanduser().resolve()


def resolve_paths(config: H3SparkConfig, workdir: Path) -> tuple[H3SparkConfig, list[tuple[str, str]]]:
    """A copy of ``config`` whose paths (WORKDIR_PATHS) are absolute, relative ones under ``workdir``,
    and one (key, where) row per path the config names. A relative path that climbs out of the
    workdir with '..' is a ConfigError (the loader refuses it too, with its line).

    >>> resolve_paths(load_config("conf/quickstart.yaml"), Path("/tmp/w"))[1]
    [('dataset.uri', 'file:///tmp/w/datasets/digits')]
    """
    from h3spark.storage import local_path, resolve_uri

    resolved, rows, problems = config.model_copy(deep=True), [], []
    for section_name, key in WORKDIR_PATHS:
        section = getattr(resolved, section_name)
        value = getattr(section, key, None)
        if not isinstance(value, str):
            continue
        if escapes_workdir(value):
            problems.append(f"{section_name}.{key}: {escape_message(value)}")
            continue
        where = resolve_uri(value, workdir)
        where = local_path(where) if key == "log_dir" else where  # TensorBoard writes a local directory
        setattr(section, key, where)
        rows.append((f"{section_name}.{key}", where))
    if problems:
        raise ConfigError(config.name, problems)
    return resolved, rows
