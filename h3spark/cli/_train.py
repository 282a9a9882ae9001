"""``h3spark train CONFIG [--resume]``: train with the config's ``training:`` section."""

from __future__ import annotations

from pathlib import Path

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
        print_summary(f"h3spark train {config.name}: done (workdir {ctx.workdir})", ctx.summary)
        return 0
    from h3spark.train import train_from_config
    from h3spark.config import DEFAULT_WORKDIR

    workdir = Path(args.workdir or config.workdir or DEFAULT_WORKDIR).expanduser().resolve()
    summary, _ = train_from_config(config, workdir, resume=args.resume)
    print_summary(f"h3spark train {config.name}: done (workdir {workdir})", summary)
    return 0
