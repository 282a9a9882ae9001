"""Entry point of the ``h3spark`` console script.

Each subcommand lives in its own module with a ``register(subparsers, common)``
function; ``common`` holds the parent parsers: ``common.plain`` (``-v``, every
command) and ``common.config`` (adds ``--workdir`` and ``--set``, for the commands
that load a config). A command takes only the options it uses; any other is a usage
error. A registered command sets ``func(args) -> int`` on its parser.
"""

from __future__ import annotations

import argparse
import logging
import sys

from h3spark.cli._common import CommonOptions
from h3spark.errors import H3SparkError, UsageError

# Every command, in the order --help lists them, and the module that registers it. A run names
# one command, and only its module is imported: the others would import what they run (the
# serving stack, pandas, ...), about 1.5 s of a 2-core machine before, say, a launch's JVM starts.
_COMMANDS = {
    "run": "h3spark.cli._run",
    "validate": "h3spark.cli._run",
    "services": "h3spark.cli._services",
    "preprocess": "h3spark.cli._preprocess",
    "launch": "h3spark.cli._launch",
    "train": "h3spark.cli._train",
    "experiment": "h3spark.cli._experiment",
    "tensorboard": "h3spark.cli._tensorboard",
    "actors": "h3spark.cli._actors",
    "stream": "h3spark.cli._stream",
    "gates": "h3spark.cli._gates",
    "predict": "h3spark.cli._predict",
    "serve": "h3spark.cli._serve",
    "web": "h3spark.cli._web",
    "report": "h3spark.cli._report",
    "config": "h3spark.cli._config_reference",
}


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting itself."""

    def error(self, message: str):  # noqa: D401 - argparse's API
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser: with every command, or with ``command``'s only (when it is one)."""
    import importlib

    common = CommonOptions.build(_Parser)
    parser = _Parser(prog="h3spark", description="Spark-integrated distributed training: "
                     "ingest, preprocess, feed, train, tune and connect models.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in [_COMMANDS[command]] if command in _COMMANDS else dict.fromkeys(_COMMANDS.values()):
        importlib.import_module(name).register(subparsers, common)
    # the commands whose parser got --set (from common.config): only they take --workdir and --set
    parser.set_defaults(config_commands=sorted(name for name, sub in subparsers.choices.items()
                                               if sub.get_default("overrides") is not None))
    return parser


_CONFIG_OPTIONS = ("--workdir", "--set")


def _refuse_config_options(argv: list[str], config_commands: list[str]) -> None:
    """``--workdir``/``--set`` given to a command that loads no config is a usage error, said plainly."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    command = next((word for word in words if not word.startswith("-")), None)
    if command is None or command in config_commands:
        return
    for word in words:
        if word.split("=", 1)[0] in _CONFIG_OPTIONS:
            every = build_parser().get_default("config_commands")  # the parser at hand may hold one command only
            raise UsageError(f"'h3spark {command}' takes no {word.split('=', 1)[0]} (it loads no config); only "
                             f"{', '.join(every)} take --workdir and --set. See: h3spark {command} --help")


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("py4j").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(argv[0] if argv else None)
        _refuse_config_options(argv, parser.get_default("config_commands"))
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
    args = [part for word in argv for part in (word.split("=", 1) if word.startswith("--config=") else [word])]
    if "--config" in args:
        index = args.index("--config")
        if index + 1 >= len(args) or not args[index + 1] or args[index + 1].startswith("-"):
            print(f"h3spark: --config needs a value, e.g. --config conf/NAME.yaml\n"
                  f"usage: spark-submit [SPARK OPTIONS] jobs/{command}.py --config CONFIG [OPTIONS]  "
                  f"(OPTIONS: see h3spark {command} --help)", file=sys.stderr)
            return 2
        args[index:index + 2] = [args[index + 1]]
    return main([command, *args])


if __name__ == "__main__":
    sys.exit(main())
