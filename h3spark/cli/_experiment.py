"""``h3spark experiment CONFIG``: run the config's experiment: section (a hyperparameter search)."""

from __future__ import annotations

from h3spark.cli._common import add_config_argument, load_from_args, print_summary


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("experiment", parents=[common.config], help="run the experiment: section (grid, random "
                                   "or evolutionary search, each trial a Spark task); re-running resumes it")
    add_config_argument(parser)
    parser.set_defaults(func=_experiment)


def _experiment(args) -> int:
    from h3spark.tune import require_success, run_experiment
    from h3spark.workflow import RunContext

    ctx = RunContext.create(load_from_args(args), args.workdir)
    config = ctx.config
    try:
        result = run_experiment(config, ctx.workdir, ctx.spark)
    finally:
        if ctx.has_spark:
            ctx.spark.stop()
    print(result.leaderboard())
    require_success(result)
    best = (f"trial {result.best_trial_id}: {result.metric}={result.best_metrics.get(result.metric)} {result.best_params}")
    print_summary(f"h3spark experiment {config.name}: done", [
        *ctx.summary, ("experiment dir", result.experiment_dir), ("best", best), ("best logdir", str(result.best_logdir)),
        ("tensorboard", f"h3spark tensorboard {result.experiment_dir}"),
        ("report", f"h3spark report {result.experiment_dir}")])
    return 0
