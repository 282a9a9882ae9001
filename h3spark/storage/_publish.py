"""Atomic publish: a dataset becomes visible under its final name only when complete.

    >>> with publishing("file:///tmp/work/datasets/digits") as tmp_uri:
    ...     dataframe.write.parquet(tmp_uri)   # any writer; Spark, pyarrow, ...

The writer fills a hidden sibling directory (``.NAME.h3spark-tmp-XXXX``, which Spark and
Hadoop skip when listing); on success a ``_SUCCESS`` marker is added and the directory
is renamed to its final name. On any failure, Ctrl-C included, the temporary directory
is removed, and a killed process leaves only a hidden temporary, never the final name.
"""

from __future__ import annotations

import json
import logging
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from h3spark.errors import DatasetExistsError, DatasetNotFoundError, StorageError
from h3spark.storage._fs import FileSystem, filesystem_for
from h3spark.storage._uri import join_uri, split_name

logger = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS"
MANIFEST_NAME = "_manifest.json"
_TMP_TAG = ".h3spark-tmp-"


@contextmanager
def publishing(uri: str, overwrite: bool = False, fs: FileSystem | None = None) -> Iterator[str]:
    """Yield a temporary URI to write into; publish it atomically as ``uri`` on success."""
    fs = fs or filesystem_for(uri)
    if not overwrite and fs.exists(uri):
        raise DatasetExistsError(f"{uri} already exists. Choose another URI, delete it, or set overwrite: true.")
    parent, name = split_name(uri)
    fs.makedirs(parent)
    tmp_uri = join_uri(parent, f".{name}{_TMP_TAG}{uuid.uuid4().hex[:8]}")
    logger.debug("writing to temporary %s", tmp_uri)
    try:
        yield tmp_uri
        _finish(fs, tmp_uri, uri, overwrite)
    except BaseException:
        _discard(fs, tmp_uri)
        raise


def _finish(fs: FileSystem, tmp_uri: str, uri: str, overwrite: bool) -> None:
    if not fs.isdir(tmp_uri):
        raise StorageError(f"nothing was written to {tmp_uri}, so {uri} was not published.")
    marker = join_uri(tmp_uri, SUCCESS_MARKER)
    if not fs.exists(marker):
        fs.write_bytes(marker, b"")
    if overwrite and fs.exists(uri):
        parent, name = split_name(uri)
        old_uri = join_uri(parent, f".{name}.h3spark-old-{uuid.uuid4().hex[:8]}")
        fs.rename(uri, old_uri)
        fs.rename(tmp_uri, uri)
        fs.delete(old_uri)
    else:
        fs.rename(tmp_uri, uri)
    logger.info("published %s", uri)


def _discard(fs: FileSystem, tmp_uri: str) -> None:
    try:
        fs.delete(tmp_uri)
    except StorageError as error:  # keep the original failure; say what was left behind
        logger.warning("could not remove temporary %s: %s", tmp_uri, error)


def is_published(uri: str, fs: FileSystem | None = None) -> bool:
    fs = fs or filesystem_for(uri)
    return fs.exists(join_uri(uri, SUCCESS_MARKER))


def require_published(uri: str, fs: FileSystem | None = None) -> None:
    """Raise DatasetNotFoundError unless a complete dataset is at ``uri``."""
    fs = fs or filesystem_for(uri)
    if not fs.exists(uri):
        raise DatasetNotFoundError(f"no dataset at {uri}. Run the stage that writes it first (e.g. 'h3spark run CONFIG').")
    if not fs.exists(join_uri(uri, SUCCESS_MARKER)):
        raise DatasetNotFoundError(f"{uri} exists but is incomplete (no {SUCCESS_MARKER} marker); it was not written by a "
                                   "finished job. Write it again.")


def write_manifest(uri: str, manifest: dict[str, Any], fs: FileSystem | None = None) -> str:
    """Write ``_manifest.json`` into a dataset directory (before or after publishing)."""
    fs = fs or filesystem_for(uri)
    body = {"format": "h3spark.dataset/1", "created_at": datetime.now(timezone.utc).isoformat(), **manifest}
    target = join_uri(uri, MANIFEST_NAME)
    fs.write_bytes(target, json.dumps(body, indent=2, sort_keys=True, default=str).encode())
    return target


def read_manifest(uri: str, fs: FileSystem | None = None) -> dict[str, Any]:
    """Read the manifest of a published dataset."""
    fs = fs or filesystem_for(uri)
    require_published(uri, fs)
    target = join_uri(uri, MANIFEST_NAME)
    if not fs.exists(target):
        raise DatasetNotFoundError(f"{uri} has no {MANIFEST_NAME}; it was not written by h3spark. Write it with "
                                   "'h3spark preprocess' or 'h3spark run'.")
    try:
        return json.loads(fs.read_bytes(target))
    except json.JSONDecodeError as error:
        raise StorageError(f"{target} is not valid JSON (line {error.lineno}): {error.msg}.") from None
