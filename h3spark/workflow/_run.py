"""``h3spark run CONFIG``: run every stage whose section the config has, in data-flow order."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from h3spark.config import H3SparkConfig
from h3spark.workflow._context import RunContext
from h3spark.workflow._experiment import experiment_stage
from h3spark.workflow._preprocess import preprocess_stage
from h3spark.workflow._stages import ingest_stage, training_stage

logger = logging.getLogger(__name__)

# (name, is this stage configured?, stage). Later stages read earlier stages' ctx.outputs.
STAGES: list[tuple[str, Callable[[H3SparkConfig], bool], Callable[[RunContext], None]]] = [
    ("ingest", lambda config: config.source is not None and config.preprocess is None, ingest_stage),
    ("preprocess", lambda config: config.preprocess is not None, preprocess_stage),
    ("training", lambda config: config.training is not None, training_stage),
    ("experiment", lambda config: config.experiment is not None, experiment_stage),
]


def run(config: H3SparkConfig, workdir: str | Path | None = None, stop_spark: bool = True) -> RunContext:
    """Run the configured stages; return the context holding outputs and the summary.

    >>> ctx = run(load_config("conf/quickstart.yaml"))
    >>> ctx.outputs["metrics"]["accuracy"]
    """
    ctx = RunContext.create(config, workdir)
    selected = [(name, stage) for name, wanted, stage in STAGES if wanted(config)]
    if not selected:
        from h3spark.errors import ConfigError

        raise ConfigError(config.name, ["nothing to run: add a source:, preprocess:, training: or experiment: section."])
    try:
        for index, (name, stage) in enumerate(selected, start=1):
            logger.info("stage %d/%d: %s experiment=%s", index, len(selected), name, config.name)
            started = time.monotonic()
            stage(ctx)
            ctx.report(f"{name} time", f"{time.monotonic() - started:.1f} s")
    finally:
        if ctx.has_spark:
            ctx.report("spark master", ctx.spark.sparkContext.master)
            if stop_spark:
                ctx.spark.stop()
    ctx.report("total time", f"{time.monotonic() - ctx.started_s:.1f} s")
    return ctx
