"""Atomic publish: a dataset's new version becomes visible only when complete, by one rename.

    >>> with publishing("file:///tmp/work/datasets/digits", overwrite=True) as tmp_uri:
    ...     dataframe.write.parquet(tmp_uri)   # any writer; Spark, pyarrow, ...

The writer fills a version folder inside a hidden sibling staging folder
(``.NAME.h3spark-tmp-XXXX/_versions/N``; Spark and Hadoop skip hidden names when listing).
On success its ``_SUCCESS`` gets the publish record and one rename that never replaces
anything makes it visible (see ``_layout`` for the layout readers see):

- the first publish renames the staging folder to ``NAME`` (version 1 inside it);
- an overwrite renames the version folder to ``NAME/_versions/N``, N being one more than
  the newest version when the block began, then deletes the versions before N - 1.

Renames are atomic on POSIX and HDFS, and neither replaces an existing target here, so two
writers cannot both win: the one that loses (another publish took ``NAME``, version N or a
newer one while it wrote) gets DatasetExistsError naming the other's version, and its staging
folder (or its version, when newer ones landed just before its rename) is removed. On any
failure, Ctrl-C included, the staging folder is removed; a killed process leaves only a
hidden staging folder, never a partial version. ``overwrite`` replaces
only a dataset published this way; anything else at the URI is refused and left untouched.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from h3spark.errors import DatasetExistsError, DatasetNotFoundError, StorageError
from h3spark.storage._fs import FileSystem, filesystem_for
from h3spark.storage._layout import (SUCCESS_MARKER, VERSIONS_DIR, current_version, publish_record, resolve_published,
                                     version_numbers, version_uri)
from h3spark.storage._uri import join_uri, split_name

logger = logging.getLogger(__name__)

_TMP_TAG = ".h3spark-tmp-"


@contextmanager
def publishing(uri: str, overwrite: bool = False, fs: FileSystem | None = None) -> Iterator[str]:
    """Yield a temporary URI to write into; publish it atomically as the dataset ``uri`` on success.

    Raises DatasetExistsError before anything is written when ``uri`` exists and may not be
    replaced, and at the end when another writer published ``uri`` meanwhile.
    """
    fs = fs or filesystem_for(uri)
    base = _replaceable_version(uri, overwrite, fs)
    parent, name = split_name(uri)
    staging = join_uri(parent, f".{name}{_TMP_TAG}{uuid.uuid4().hex[:8]}")
    number = (base or 0) + 1
    fs.makedirs(join_uri(staging, VERSIONS_DIR))
    logger.debug("writing version %d of %s to %s", number, uri, staging)
    try:
        yield version_uri(staging, number)
        _publish(uri, staging, number, base is None, fs)
    except BaseException:
        _discard(fs, staging)
        raise
    if base is not None:
        _discard(fs, staging)  # only the empty shell of the version moved out of it is left
        _collect_garbage(uri, number, fs)


def _replaceable_version(uri: str, overwrite: bool, fs: FileSystem) -> int | None:
    """The newest version number at ``uri`` that this publish may follow; None when ``uri`` is free."""
    if not fs.exists(uri):
        return None
    current = current_version(uri, fs)
    legacy = current is None and fs.exists(join_uri(uri, SUCCESS_MARKER))
    if current is None and not legacy:
        even = ", even with overwrite: true" if overwrite else ""
        raise DatasetExistsError(f"{uri} exists but is not an h3spark dataset (no published version under "
                                 f"{VERSIONS_DIR}/), so it is left untouched{even}. Move it away or choose another "
                                 "dataset URI.")
    if not overwrite:
        raise DatasetExistsError(f"{uri} already exists. Choose another URI, delete it, or set overwrite: true.")
    if legacy:
        raise DatasetExistsError(f"{uri} was published by an older h3spark, with its files directly in it, so it cannot "
                                 "be replaced atomically and is left untouched. Delete it yourself (rm -r, or hdfs dfs "
                                 "-rm -r) and run again, or choose another dataset URI.")
    return max(version_numbers(uri, fs))


def _publish(uri: str, staging: str, number: int, first: bool, fs: FileSystem) -> None:
    tmp_uri = version_uri(staging, number)
    if not fs.isdir(tmp_uri):
        raise StorageError(f"nothing was written to {tmp_uri}, so {uri} was not published.")
    fs.write_bytes(join_uri(tmp_uri, SUCCESS_MARKER), _record(uri, number))
    if first:
        _rename(uri, staging, uri, fs)
    else:
        _require_newest(uri, number - 1, fs)
        _rename(uri, tmp_uri, version_uri(uri, number), fs)
        _require_current(uri, number, fs)
    logger.info("published %s version=%d", uri, number)


def _rename(uri: str, source: str, target: str, fs: FileSystem) -> None:
    try:
        fs.rename(source, target)
    except StorageError:
        if not fs.exists(target):
            raise
        raise _lost_race(uri, target, fs) from None


def _require_newest(uri: str, base: int, fs: FileSystem) -> None:
    """Refuse to publish after ``base`` once a newer version exists: its slot may be free again
    (garbage collection deletes old versions), and a version renamed there is never read."""
    newest = max(version_numbers(uri, fs), default=base)
    if newest != base:
        raise _lost_race(uri, version_uri(uri, newest), fs)


def _require_current(uri: str, number: int, fs: FileSystem) -> None:
    """After the rename: newer versions that landed between the check and the rename win, and
    this one, which readers would never read, is removed."""
    current = current_version(uri, fs)
    if current == number:
        return
    _discard(fs, version_uri(uri, number))
    if current is None:
        raise StorageError(f"{uri}: version {number} was renamed into place, then another process deleted every "
                           "version, so nothing was published. Run again.")
    raise _lost_race(uri, version_uri(uri, current), fs)


def _record(uri: str, number: int) -> bytes:
    return json.dumps({"format": "h3spark.publish/1", "uri": uri, "version": number,
                       "writer": f"{socket.gethostname()}:{os.getpid()}",
                       "published_at": datetime.now(timezone.utc).isoformat()}, indent=2).encode()


def _lost_race(uri: str, target: str, fs: FileSystem) -> DatasetExistsError:
    """The error of a publish whose rename found ``target`` taken by another writer."""
    try:
        other = target if target != uri else resolve_published(uri, fs)
    except DatasetNotFoundError:
        return DatasetExistsError(f"{uri} appeared while this job was writing, and it is not an h3spark dataset, so "
                                  "nothing was published and this job's files were removed. Move it away or choose "
                                  "another dataset URI.")
    record = publish_record(other, fs)
    by = f" (by {record['writer']} at {record['published_at']})" if {"writer", "published_at"} <= record.keys() else ""
    return DatasetExistsError(f"{uri}: another writer published {other}{by} while this job was writing, so this job's "
                              "version was discarded and nothing of it is left. Use that dataset, or run again with "
                              "overwrite: true to replace it.")


def _collect_garbage(uri: str, number: int, fs: FileSystem) -> None:
    """Delete the versions before the previous one: a reader that resolved the previous one
    before this publish can still finish, one that resolved an older one had a publish's time."""
    try:
        for old in [n for n in version_numbers(uri, fs) if n < number][:-1]:
            fs.delete(version_uri(uri, old))
    except StorageError as error:  # published all the same; the next publish deletes them
        logger.warning("could not delete old versions of %s: %s", uri, error)


def _discard(fs: FileSystem, staging: str) -> None:
    try:
        fs.delete(staging)
    except StorageError as error:  # keep the original failure; say what was left behind
        logger.warning("could not remove temporary %s: %s", staging, error)
