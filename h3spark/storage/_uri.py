"""Dataset URIs: ``file://`` (the default; plain paths too) and ``hdfs://``."""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import urlsplit

from h3spark.errors import StorageError

SCHEMES = ("file", "hdfs")


def resolve_uri(uri: str, workdir: str | Path | None = None) -> str:
    """Make ``uri`` absolute: relative plain paths land under ``workdir``.

    >>> resolve_uri("datasets/digits", "/tmp/work")
    'file:///tmp/work/datasets/digits'
    """
    scheme = urlsplit(uri).scheme
    if scheme in ("", "file"):
        path = Path(urlsplit(uri).path if scheme else uri).expanduser()
        if not path.is_absolute():
            path = Path(workdir or ".").expanduser().resolve() / path
        return "file://" + posixpath.normpath(path.as_posix())
    if scheme == "hdfs":
        parts = urlsplit(uri)
        if not parts.netloc:
            raise StorageError(f"URI {uri!r} has no NameNode address. Write it as hdfs://HOST:PORT/path.")
        return f"hdfs://{parts.netloc}{posixpath.normpath(parts.path or '/')}"
    raise StorageError(f"URI {uri!r} has the unsupported scheme '{scheme}'. Use a plain path, file:// or hdfs://.")


def local_path(uri: str) -> str:
    """The local path of a ``file://`` URI."""
    parts = urlsplit(uri)
    if parts.scheme not in ("", "file"):
        raise StorageError(f"URI {uri!r} is not on the local file system.")
    return parts.path if parts.scheme else uri


def join_uri(base: str, *names: str) -> str:
    """Append path segments to a URI."""
    parts = urlsplit(base)
    path = posixpath.join(parts.path or "/", *names)
    return f"{parts.scheme}://{parts.netloc}{path}" if parts.scheme else path


def split_name(uri: str) -> tuple[str, str]:
    """Split ``scheme://host/a/b`` into (``scheme://host/a``, ``b``)."""
    parts = urlsplit(uri)
    parent, name = posixpath.split(parts.path.rstrip("/"))
    if not name:
        raise StorageError(f"URI {uri!r} names no file or directory (it is a root).")
    return f"{parts.scheme}://{parts.netloc}{parent}", name
