"""The ``preprocess`` stage of ``h3spark run``: reads source:, checks preprocess.validate, publishes dataset.uri."""

from __future__ import annotations

from h3spark.preprocess import preprocess
from h3spark.workflow._context import RunContext
from h3spark.workflow._stages import source_label


def preprocess_stage(ctx: RunContext) -> None:
    """Run the config's pipeline; later stages find the dataset in ``ctx.outputs['dataset_uri']``."""
    result = preprocess(ctx.config, workdir=str(ctx.workdir), spark=ctx.spark)
    if ctx.config.source is not None:
        ctx.report("ingested", source_label(ctx.config.source))
    ctx.outputs["dataset_uri"] = result.uri
    ctx.outputs["quarantine_uri"] = result.quarantine_uri
    ctx.outputs["preprocess"] = result
    ctx.outputs["expectations"] = result.expectations  # None without preprocess.validate
    for label, value in result.summary():
        ctx.report(label, value)
