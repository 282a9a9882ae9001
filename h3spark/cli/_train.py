"""``h3spark train CONFIG [--resume]``: train with the config's ``training:`` section."""

from __future__ import annotations

from h3spark.cli._common import add_config_argument, load_from_args, print_summary


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("train", parents=[common.config], help="train the model of a config (mxnet, torch or sklearn)",
                                   description="Train with the config's training: section, distributed when the engine "
                                               "is mxnet or torch. Example: h3spark train conf/train_mxnet_example.yaml")
    add_config_argument(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint under training.checkpoint_uri")
    parser.set_defaults(func=_train)


def _train(args) -> int:
    config = load_from_args(args)
    if config.training is not None and config.training.engine == "sklearn":
        from h3spark.workflow import run

        ctx = run(config, workdir=args.workdir)
        print_summary(f"h3spark train {config.name}: done", ctx.summary)
        return 0
    from h3spark.spark import start_spark, stop_spark

    # this process's session only runs the launch: its JVM starts now, while the rest is imported and checked
    spark = start_spark(config.spark, launch_only=True) if _on_spark(config) else None
    from h3spark.train import train_from_config
    from h3spark.workflow import RunContext

    ctx = RunContext.create(config, args.workdir)
    try:
        summary, _ = train_from_config(ctx.config, ctx.workdir, resume=args.resume, spark=spark)
    finally:
        stop_spark()  # the session the Spark launcher started, as `h3spark preprocess` does
    print_summary(f"h3spark train {config.name}: done", ctx.summary + summary)
    return 0


def _on_spark(config) -> bool:
    return config.training is not None and config.training.engine in ("mxnet", "torch") and config.training.launcher == "spark"
