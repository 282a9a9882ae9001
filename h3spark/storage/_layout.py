"""Where a published dataset's files are: the one home of the layout, and of reading it.

A dataset's URI is a folder of immutable versions; the newest complete one is the dataset::

    digits/                       the dataset's URI
      _versions/
        00000003/                 the current version: what readers read
          _SUCCESS                the publish record (JSON: uri, version, writer, time)
          _manifest.json
          part-*.parquet  or  split=NAME/part-*.parquet
        00000002/                 the previous version, kept until the next publish

A version appears by one rename of a complete folder (see ``publishing``), so a reader sees
the old version or the new one, never a part and never nothing. Every reader asks
:func:`resolve_published` once and reads the manifest and the files under the folder it
returns; a reader that resolved version N can read it until version N + 2 is published.
``_versions`` starts with ``_``, so Spark or pyarrow pointed at the dataset's URI itself find
no files (an error, never a mix of versions): give them ``resolve_published(uri)``.
A folder published before versions existed (files, ``_SUCCESS`` and manifest directly under
the URI) is still read as it is; it cannot be replaced atomically, so overwriting it is refused.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from h3spark.errors import DatasetNotFoundError, StorageError
from h3spark.storage._fs import FileSystem, filesystem_for
from h3spark.storage._uri import join_uri

logger = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS"
MANIFEST_NAME = "_manifest.json"
VERSIONS_DIR = "_versions"


def version_uri(uri: str, number: int) -> str:
    """The folder of version ``number`` under a dataset's URI (or a publish's staging folder)."""
    return join_uri(uri, VERSIONS_DIR, f"{number:08d}")


def version_numbers(uri: str, fs: FileSystem) -> list[int]:
    """The version numbers present under a dataset's URI, ascending (complete or not)."""
    folder = join_uri(uri, VERSIONS_DIR)
    if not fs.isdir(folder):
        return []
    return sorted(int(name) for name in fs.listdir(folder) if name.isdigit())


def current_version(uri: str, fs: FileSystem) -> int | None:
    """The number of the newest complete version under ``uri``, or None."""
    for number in reversed(version_numbers(uri, fs)):
        if fs.exists(join_uri(version_uri(uri, number), SUCCESS_MARKER)):
            return number
    return None


def resolve_published(uri: str, fs: FileSystem | None = None) -> str:
    """The folder a reader reads for the dataset at ``uri``: its current version.

    A version folder, or a folder published before versions, resolves to itself. Raises
    DatasetNotFoundError when nothing complete is there.

        >>> spark.read.parquet(resolve_published("hdfs://nn:8020/datasets/digits"))
    """
    fs = fs or filesystem_for(uri)
    number = current_version(uri, fs)
    if number is not None:
        return version_uri(uri, number)
    if fs.exists(join_uri(uri, SUCCESS_MARKER)):
        return uri
    if not fs.exists(uri):
        raise DatasetNotFoundError(f"no dataset at {uri}. Run the stage that writes it first (e.g. 'h3spark run CONFIG').")
    raise DatasetNotFoundError(f"{uri} exists but is incomplete: it holds no published version ({VERSIONS_DIR}/N/"
                               f"{SUCCESS_MARKER}); it was not written by a finished h3spark job. Write it again.")


def resolve_source(uri: str, fs: FileSystem | None = None) -> str:
    """Where to read a Parquet source that may be a published dataset: its current version,
    else ``uri`` itself (any folder of files, a glob, or storage Python cannot reach but Spark can)."""
    try:
        number = current_version(uri, fs or filesystem_for(uri))
    except StorageError as error:
        logger.info("cannot tell whether %s is a published dataset (%s); reading it as given", uri, error)
        return uri
    return uri if number is None else version_uri(uri, number)


def is_published(uri: str, fs: FileSystem | None = None) -> bool:
    """Whether a complete dataset (or any published folder) is at ``uri``."""
    try:
        resolve_published(uri, fs)
    except DatasetNotFoundError:
        return False
    return True


def require_published(uri: str, fs: FileSystem | None = None) -> str:
    """Raise DatasetNotFoundError unless a complete dataset is at ``uri``; return the folder to read."""
    return resolve_published(uri, fs)


def publish_record(folder: str, fs: FileSystem) -> dict[str, Any]:
    """Who published a version folder, and when (its ``_SUCCESS``); {} when it does not say."""
    try:
        record = json.loads(fs.read_bytes(join_uri(folder, SUCCESS_MARKER)) or b"{}")
    except (StorageError, ValueError) as error:  # an empty or foreign marker names no writer
        logger.debug("no publish record in %s: %s", folder, error)
        return {}
    return record if isinstance(record, dict) else {}


def write_manifest(uri: str, manifest: dict[str, Any], fs: FileSystem | None = None) -> str:
    """Write ``_manifest.json`` into the temporary folder a ``publishing`` block writes to."""
    fs = fs or filesystem_for(uri)
    body = {"format": "h3spark.dataset/1", "created_at": datetime.now(timezone.utc).isoformat(), **manifest}
    target = join_uri(uri, MANIFEST_NAME)
    fs.write_bytes(target, json.dumps(body, indent=2, sort_keys=True, default=str).encode())
    return target


def read_manifest(uri: str, fs: FileSystem | None = None) -> dict[str, Any]:
    """The manifest of the dataset at ``uri`` (of its current version).

    A reader that also reads files resolves first and passes the folder it got, so that the
    manifest and the files come from the same version.
    """
    fs = fs or filesystem_for(uri)
    target = join_uri(resolve_published(uri, fs), MANIFEST_NAME)
    if not fs.exists(target):
        raise DatasetNotFoundError(f"{uri} has no {MANIFEST_NAME}; it was not written by h3spark. Write it with "
                                   "'h3spark preprocess' or 'h3spark run'.")
    try:
        return json.loads(fs.read_bytes(target))
    except json.JSONDecodeError as error:
        raise StorageError(f"{target} is not valid JSON (line {error.lineno}): {error.msg}.") from None
