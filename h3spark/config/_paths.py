"""The config's paths that are relative to the workdir, and the rule they obey.

A relative path lands under the workdir; one that climbs out of it with ``..`` is refused
(say so with an absolute path or URI instead, e.g. ``/data/x`` or ``hdfs://nn:8020/x``).

    >>> escapes_workdir("../shared/digits"), escapes_workdir("datasets/../digits"), escapes_workdir("/data/x")
    (True, False, False)
"""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

#: (section, key) of every setting that names a file or directory, relative to the workdir unless absolute.
WORKDIR_PATHS: tuple[tuple[str, str], ...] = (
    ("source", "path"),
    ("dataset", "uri"),
    ("preprocess", "quarantine_uri"),
    ("training", "checkpoint_uri"),
    ("training", "log_dir"),
    ("experiment", "dir"),
    ("experiment", "dataset"),
)


def is_relative(path: str) -> bool:
    """True for a plain or ``file:`` path that the workdir completes (no scheme host, no leading / or ~)."""
    parts = urlsplit(path)
    if parts.scheme not in ("", "file") or parts.netloc:
        return False
    local = parts.path if parts.scheme else path
    return not local.startswith(("/", "~"))


def escapes_workdir(path: str) -> bool:
    """True when a relative ``path`` climbs above the workdir with ``..``."""
    if not is_relative(path):
        return False
    local = urlsplit(path).path if urlsplit(path).scheme else path
    normal = posixpath.normpath(local)
    return normal == ".." or normal.startswith("../")


def escape_message(path: str) -> str:
    return (f"'{path}' climbs out of the workdir with '..'. Use a path inside the workdir, or an absolute path "
            "or URI (/..., file:///..., hdfs://...) to use a place outside it on purpose.")
