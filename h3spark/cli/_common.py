"""Helpers shared by subcommands: loading the config and printing the summary."""

from __future__ import annotations

import argparse

from h3spark.config import H3SparkConfig, load_config


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="a YAML experiment config, e.g. conf/quickstart.yaml")


def load_from_args(args: argparse.Namespace) -> H3SparkConfig:
    """Load ``args.config`` with the ``--set`` overrides (raises ConfigError)."""
    return load_config(args.config, overrides=args.overrides)


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Print the short summary every long command ends with."""
    width = max((len(label) for label, _ in rows), default=0)
    print(f"\n{title}")
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")
