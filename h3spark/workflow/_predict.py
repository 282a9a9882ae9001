"""The ``predict`` stage of ``h3spark run``: the ``predict:`` section as ``h3spark predict`` runs it."""

from __future__ import annotations

from h3spark.workflow._context import RunContext


def predict_stage(ctx: RunContext) -> None:
    """Batch prediction on Spark; where the predictions went and the counts join the summary."""
    from h3spark.serve import predict

    def tasks_done(done: int, total: int) -> None:
        ctx.progress(f"predict: {done} of {total} tasks done")

    result = predict(ctx.config, workdir=str(ctx.workdir), spark=ctx.spark, progress=tasks_done)
    ctx.outputs["predict"] = result
    ctx.report("predictions", result.output)
    counted = f"{result.rows_out} rows predicted, {result.rows_quarantined} quarantined"
    if result.accuracy is not None:
        counted += f", accuracy {result.accuracy:.4f} on {result.labelled} labelled rows"
    ctx.report("predicted", counted)
