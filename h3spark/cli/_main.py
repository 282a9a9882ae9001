"""Entry point of the ``h3spark`` console script.

Each subcommand lives in its own module with a ``register(subparsers, common)``
function; ``common`` is the parent parser holding the options every command
takes (``--workdir``, ``--set``, ``-v``). A registered command sets
``func(args) -> int`` on its parser.
"""

from __future__ import annotations

import argparse
import logging
import sys

from h3spark.errors import H3SparkError, UsageError

_COMMAND_MODULES = (
    "h3spark.cli._run",
    "h3spark.cli._services",
    "h3spark.cli._preprocess",
    "h3spark.cli._launch",
    "h3spark.cli._train",
    "h3spark.cli._experiment",
    "h3spark.cli._tensorboard",
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting itself."""

    def error(self, message: str):  # noqa: D401 - argparse's API
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    common = _Parser(add_help=False)
    common.add_argument("--workdir", metavar="DIR", help="where datasets, experiments and logs go "
                        "(default: the config's workdir, else ./h3spark-work)")
    common.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.lr=0.1 (repeatable)")
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser = _Parser(prog="h3spark", description="Spark-integrated distributed training: "
                     "ingest, preprocess, feed, train, tune and connect models.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, common)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("py4j").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        _configure_logging(args.verbose)
        return int(args.func(args) or 0)
    except H3SparkError as error:
        print(f"h3spark: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("h3spark: interrupted", file=sys.stderr)
        return 130


def job_main(command: str, argv: list[str]) -> int:
    """Entry for spark-submit jobs: ``jobs/NAME.py --config CONFIG [OPTIONS]`` runs ``h3spark COMMAND CONFIG [OPTIONS]``."""
    args = list(argv)
    if "--config" in args:
        index = args.index("--config")
        if index + 1 >= len(args):
            print("h3spark: --config needs a value: --config conf/NAME.yaml", file=sys.stderr)
            return 2
        args[index:index + 2] = [args[index + 1]]
    return main([command, *args])


if __name__ == "__main__":
    sys.exit(main())
