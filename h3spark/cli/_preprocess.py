"""``h3spark preprocess CONFIG``: fit the config's pipeline on Spark and publish the dataset."""

from __future__ import annotations

from h3spark.cli._common import add_config_argument, load_from_args, print_summary


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("preprocess", parents=[common.config],
                                   help="run the preprocess: section (fit, transform, publish Parquet)")
    add_config_argument(parser)
    parser.set_defaults(func=_preprocess)


def _preprocess(args) -> int:
    from h3spark.preprocess import preprocess
    from h3spark.spark import stop_spark
    from h3spark.workflow import RunContext

    ctx = RunContext.create(load_from_args(args), args.workdir)
    try:
        result = preprocess(ctx.config, workdir=str(ctx.workdir))
    finally:
        stop_spark()
    print_summary(f"h3spark preprocess {ctx.config.name}: done", ctx.summary + result.summary())
    return 0
