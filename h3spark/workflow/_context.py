"""What a running config shares between its stages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from h3spark.config import DEFAULT_WORKDIR, H3SparkConfig


@dataclass
class RunContext:
    """The config, the resolved workdir, a lazy SparkSession and each stage's outputs."""

    config: H3SparkConfig
    workdir: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)
    started_s: float = field(default_factory=time.monotonic)
    _spark: Any = None

    @classmethod
    def create(cls, config: H3SparkConfig, workdir: str | Path | None = None) -> "RunContext":
        chosen = Path(workdir or config.workdir or DEFAULT_WORKDIR).expanduser().resolve()
        chosen.mkdir(parents=True, exist_ok=True)
        from h3spark.storage import configure

        configure(webhdfs_url=config.storage.webhdfs_url, user=config.storage.hdfs_user)
        return cls(config=config, workdir=chosen)

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
