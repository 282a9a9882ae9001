"""The ``experiment`` stage of ``h3spark run``: a hyperparameter search over the dataset."""

from __future__ import annotations

from h3spark.tune import require_success, run_experiment
from h3spark.workflow._context import RunContext


def experiment_stage(ctx: RunContext) -> None:
    """Run the search, keep the result, add the best trial to the summary."""
    result = run_experiment(ctx.config, ctx.workdir, ctx.spark)
    ctx.outputs["experiment"] = result
    print(result.leaderboard())
    require_success(result)
    ctx.report("experiment", result.experiment_dir)
    best = "none succeeded" if result.best_trial_id is None else (
        f"trial {result.best_trial_id} {result.metric}={result.best_metrics.get(result.metric)} {result.best_params}")
    ctx.report("best trial", best)
