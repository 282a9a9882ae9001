"""Helpers shared by subcommands: their common options, loading the config and printing the summary."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the config package costs ~0.4 s to import; commands that load no config never do
    from h3spark.config import H3SparkConfig


@dataclass(frozen=True)
class CommonOptions:
    """Parent parsers: ``plain`` holds ``-v`` (every command); ``config`` adds ``--workdir`` and
    ``--set``, which only the commands that load a config take."""

    plain: argparse.ArgumentParser
    config: argparse.ArgumentParser

    @classmethod
    def build(cls, parser_class: type[argparse.ArgumentParser]) -> "CommonOptions":
        plain = parser_class(add_help=False)
        plain.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
        config = parser_class(add_help=False, parents=[plain])
        config.add_argument("--workdir", metavar="DIR", help="where datasets, experiments and logs go "
                            "(default: the config's workdir, else ./h3spark-work)")
        config.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="override a config value; VALUE is read as a YAML scalar or list, e.g. "
                                 "--set training.lr=1e-3 (repeatable)")
        return cls(plain=plain, config=config)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="a YAML experiment config, e.g. conf/quickstart.yaml")


def load_from_args(args: argparse.Namespace) -> H3SparkConfig:
    """Load ``args.config`` with the ``--set`` overrides (raises ConfigError), model specs' shapes checked."""
    from h3spark.config import load_config
    from h3spark.train import validation_context

    return load_config(args.config, overrides=args.overrides, context=validation_context())


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Print the short summary every long command ends with."""
    width = max((len(label) for label, _ in rows), default=0)
    print(f"\n{title}")
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")
