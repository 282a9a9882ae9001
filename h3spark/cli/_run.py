"""``h3spark run CONFIG`` and ``h3spark validate CONFIG``."""

from __future__ import annotations

from h3spark.cli._common import add_config_argument, load_from_args, print_summary


def register(subparsers, common) -> None:
    run = subparsers.add_parser("run", parents=[common.config], help="run every stage the config describes")
    add_config_argument(run)
    run.set_defaults(func=_run)
    validate = subparsers.add_parser("validate", parents=[common.config], help="check a config without running it")
    add_config_argument(validate)
    validate.set_defaults(func=_validate)


def _run(args) -> int:
    from h3spark.workflow import next_steps, run

    config = load_from_args(args)
    ctx = run(config, workdir=args.workdir, progress=lambda line: print(line, flush=True))
    print_summary(f"h3spark run {config.name}: done", ctx.summary + next_steps(ctx, args.config))
    return 0


def _validate(args) -> int:
    """Check the config and say where its paths resolve (under --workdir, when given); create nothing."""
    from h3spark.workflow import choose_workdir, resolve_paths

    config = load_from_args(args)
    sections = [name for name in type(config).model_fields if name in config.model_fields_set]
    print(f"{args.config}: valid (name={config.name}; sections: {', '.join(sections)})")
    workdir = choose_workdir(config, args.workdir)
    _, paths = resolve_paths(config, workdir)
    print_summary("paths", [("workdir", str(workdir)), *paths])
    return 0
