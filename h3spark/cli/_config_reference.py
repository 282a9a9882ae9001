"""``h3spark config reference [--out FILE]``: the config reference, generated from the config models."""

from __future__ import annotations

import argparse
from pathlib import Path

from h3spark.errors import UsageError


def register(subparsers, common) -> None:
    parser = subparsers.add_parser("config", parents=[common.plain], help="describe the config format "
                                   "(config reference: every section and key)")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", parser_class=type(parser))
    reference = actions.add_parser("reference", parents=[common.plain], help="print the config reference as Markdown "
                                   "(every section, key, type, default and description)")
    reference.add_argument("--out", metavar="FILE", help="write it to FILE instead, e.g. docs/config_reference.md")
    parser.set_defaults(func=_config, config_parser=parser)


def _config(args: argparse.Namespace) -> int:
    from h3spark.config import config_reference

    if getattr(args, "config_action", None) is None:
        args.config_parser.print_help()
        return 2
    text = config_reference()
    if args.out is None:
        print(text, end="")
        return 0
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"cannot write the config reference to {out}: the folder {out.parent} does not exist. "
                         "Create it, or give --out a path in an existing folder.")
    if out.is_dir():
        raise UsageError(f"cannot write the config reference to {out}: it is a folder. Give --out a file name, "
                         f"e.g. {out / 'config_reference.md'}.")
    out.write_text(text)
    print(f"wrote {out}")
    return 0
