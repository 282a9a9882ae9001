"""spark-submit entry point: ``spark-submit jobs/preprocess.py --config CONFIG [--workdir DIR] [--set K=V]``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from h3spark.cli._main import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    if "--config" in args:
        index = args.index("--config")
        args[index:index + 2] = args[index + 1:index + 2]
    return cli_main(["preprocess", *args])


if __name__ == "__main__":
    sys.exit(main())
