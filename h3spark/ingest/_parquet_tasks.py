"""Parquet read by the Spark tasks themselves, with pyarrow: no JVM row conversion.

Spark's Parquet reader turns columns into JVM rows and, for a Python task, back into
Arrow: for 1M rows of 12 columns that costs seconds, more than the preprocessing. A
Parquet source needs none of it. The driver reads the files' footers, deals their row
groups out to tasks in input order, and each task reads its own row groups with pyarrow
(local disk or WebHDFS range reads), cast to the types Spark would have produced, so the
two read paths give the same blocks.

    >>> files = parquet_files(source, workdir, storage)      # None: Spark must read this source
    >>> tasks = files.tasks(spark, 2)
    >>> tasks.mapInArrow(fn, "n long", barrier=True).collect()

:class:`ParquetTasks` offers the two members of a DataFrame that preprocessing uses,
``mapInArrow`` and ``schema``, so the preprocessing passes take either.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from h3spark.config import SourceConfig
from h3spark.errors import ConfigError, DataError, StorageError
from h3spark.storage import filesystem_for, join_uri, resolve_source, resolve_uri
from h3spark.storage._uri import local_path

logger = logging.getLogger(__name__)

TARGET_TASK_BYTES = 128 << 20  # as Spark's spark.sql.files.maxPartitionBytes
_GLOB = set("*?[{")


@dataclass(frozen=True)
class Piece:
    """One row group of one file."""

    uri: str
    row_group: int
    rows: int


@dataclass
class ParquetFiles:
    """The row groups of a Parquet source, planned on the driver from the files' footers."""

    uri: str
    pieces: list[Piece]
    arrow_schema: pa.Schema  # as Spark's reader would hand it to a Python task
    size_bytes: int
    storage: dict

    @property
    def rows(self) -> int:
        return sum(piece.rows for piece in self.pieces)

    def default_tasks(self, slots: int) -> int:
        """As many tasks as Spark's file splitting would make: about one per 128 MiB, at least one per slot."""
        return max(1, min(len(self.pieces), max(slots, math.ceil(self.size_bytes / TARGET_TASK_BYTES))))

    def tasks(self, spark, count: int) -> "ParquetTasks":
        """The row groups dealt out to ``count`` tasks: contiguous runs of about equal rows."""
        return ParquetTasks(spark, _deal(self.pieces, count), self.arrow_schema, self.storage)


class ParquetTasks:
    """Spark tasks that each read their own row groups (see the module docstring)."""

    def __init__(self, spark, assignments: list[list[Piece]], arrow_schema: pa.Schema, storage: dict):
        from pyspark.sql.pandas.types import from_arrow_schema

        self.sparkSession, self.assignments = spark, assignments
        self.arrow_schema, self.storage = arrow_schema, storage
        self.schema = from_arrow_schema(arrow_schema)

    def mapInArrow(self, fn: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]], schema, barrier=False):
        """``fn`` over each task's blocks, as ``DataFrame.mapInArrow``; returns a DataFrame."""
        assignments, arrow_schema, storage = self.assignments, self.arrow_schema, self.storage

        def run(task_ids: Iterator[pa.RecordBatch]):
            ids = [task for batch in task_ids for task in batch.column(0).to_pylist()]  # one row of spark.range
            yield from fn(read_pieces([piece for task in ids for piece in assignments[task]], arrow_schema, storage))

        count = len(assignments)
        return self.sparkSession.range(count, numPartitions=count).mapInArrow(run, schema, barrier=barrier)


def read_pieces(pieces: list[Piece], arrow_schema: pa.Schema, storage: dict) -> Iterator[pa.RecordBatch]:
    """One record batch per row group, in order, with Spark's types. A task's pieces are
    contiguous runs of each file, so one file is open at a time."""
    uri, handle, parquet = None, None, None
    try:
        for piece in pieces:
            try:
                if piece.uri != uri:
                    _close(handle, parquet)
                    uri, handle, parquet = piece.uri, None, None
                    handle = _handle(piece.uri, storage)
                    parquet = pq.ParquetFile(handle, pre_buffer=not piece.uri.startswith("file://"))
                table = parquet.read_row_group(piece.row_group)
            except (OSError, pa.ArrowException) as error:
                reason = " ".join(str(error).split())
                raise DataError(f"cannot read row group {piece.row_group} of {piece.uri}: {reason}. The file changed "
                                "or is damaged since the job was planned; rewrite it and run again.") from None
            yield _conform(table, arrow_schema).combine_chunks().to_batches()[0] if table.num_rows else \
                pa.RecordBatch.from_pylist([], schema=arrow_schema)
    finally:
        _close(handle, parquet)


def _close(handle, parquet) -> None:
    if parquet is not None:
        parquet.close()
    if handle is not None:
        handle.close()  # ParquetFile does not close a file object it was given


def parquet_files(source: SourceConfig, workdir: str | None, storage: dict, reader: str = "auto",
                  timezone: str = "UTC") -> ParquetFiles | None:
    """Plan a task-side read of a Parquet source, or None where Spark's reader must do it.

    ``reader`` is ``auto`` (pyarrow where it gives what Spark would: a Parquet file or a flat
    directory of them, one schema, types Spark supports, no reader options; Spark's reader
    when Python cannot reach the storage), ``pyarrow`` (the same, and an error where it
    cannot) or ``spark``. ``timezone`` labels zoned timestamps (Spark's session time zone).
    """
    if reader == "spark" or (reader == "auto" and source.format != "parquet"):
        return None
    why_not = _unsupported(source)
    uri = resolve_uri(source.path, workdir) if source.path else None
    try:
        plan = None if why_not else _plan(uri, storage, timezone)
    except StorageError as error:
        if reader == "pyarrow":
            raise
        plan = f"Python cannot reach it ({error})"
    if isinstance(plan, str):
        why_not, plan = plan, None
    if why_not and reader == "pyarrow":
        raise ConfigError("preprocess", [f"reader: pyarrow cannot read this source: {why_not}. "
                                         "Set preprocess.reader: spark (or auto)."])
    if why_not:
        logger.info("Spark reads the source: %s", why_not)
    return plan


def _unsupported(source: SourceConfig) -> str | None:
    if source.format != "parquet":
        return f"its format is {source.format}, not parquet"
    if source.options:
        return f"it sets Spark reader options ({', '.join(sorted(source.options))})"
    if _GLOB & set(source.path):
        return f"its path {source.path} is a glob pattern"
    return None


def _plan(uri: str, storage: dict, timezone: str) -> ParquetFiles | str:
    """The row groups of every file, or why the task-side read does not apply."""
    from pyspark.errors import PySparkException
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    fs = filesystem_for(uri, storage.get("webhdfs_url"), storage.get("hdfs_user"))
    uri = resolve_source(uri, fs)  # a published dataset: its current version
    if not fs.exists(uri):
        raise DataError(f"source.path {uri} does not exist. Check the path in the config.")
    files = [uri]
    if fs.isdir(uri):
        names = [name for name in fs.listdir(uri) if not name.startswith(("_", "."))]
        nested = [name for name in names if fs.isdir(join_uri(uri, name))]
        if nested:
            return f"{uri} has subdirectories ({', '.join(nested[:3])}): Spark discovers partition columns there"
        files = [join_uri(uri, name) for name in names]
        if not files:
            return f"{uri} holds no files"
    pieces, schema, size = [], None, 0
    for file_uri in files:
        try:
            with _handle(file_uri, storage) as handle:
                file_size = handle.seek(0, io.SEEK_END)  # known to the open handle: no second stat over WebHDFS
                metadata = pq.read_metadata(handle)
        except (OSError, pa.ArrowException) as error:
            reason = " ".join(str(error).split())
            raise DataError(f"{file_uri} is not a readable Parquet file ({reason}). Remove it from the source "
                            "directory or write it again.") from None
        int96 = [column.name for column in metadata.schema if column.physical_type == "INT96"]
        if int96:  # legacy Hive/Impala timestamps: Spark reads them zoned, pyarrow naive
            return f"{file_uri} stores {', '.join(int96)} as INT96 timestamps"
        file_schema = metadata.schema.to_arrow_schema().remove_metadata()
        if schema is None:
            schema = file_schema
        elif not file_schema.equals(schema):
            return f"{file_uri} has another schema than {files[0]}"
        size += file_size
        pieces += [Piece(file_uri, index, metadata.row_group(index).num_rows) for index in range(metadata.num_row_groups)]
    try:
        # naive timestamps are TIMESTAMP_NTZ, as Spark infers them from Parquet; zoned ones carry the
        # session's time zone; every column is nullable, as in any Spark file source
        nullable = pa.schema([field.with_nullable(True) for field in schema])
        spark_types = to_arrow_schema(from_arrow_schema(nullable), timezone=timezone)
    except PySparkException as error:
        return f"a column type has no Spark equivalent ({error})"
    return ParquetFiles(uri, pieces, spark_types, size, storage)


def _deal(pieces: list[Piece], count: int) -> list[list[Piece]]:
    """Contiguous runs of pieces, about ``rows / count`` rows each (some empty when pieces are few)."""
    total, assignments, done = sum(piece.rows for piece in pieces), [[] for _ in range(count)], 0
    for piece in pieces:
        task = min(count - 1, (done * count) // total) if total else 0
        assignments[task].append(piece)
        done += piece.rows
    return assignments


def _handle(uri: str, storage: dict):
    if uri.startswith("file://"):
        return pa.memory_map(local_path(uri))  # native: reads do not hold the GIL
    return filesystem_for(uri, storage.get("webhdfs_url"), storage.get("hdfs_user")).open_input(uri)


def _conform(table: pa.Table, arrow_schema: pa.Schema) -> pa.Table:
    """The table with Spark's types (dictionary to values, large to plain strings, ns to us...)."""
    if table.schema.equals(arrow_schema, check_metadata=False):
        return table
    return pa.table([_cast(table.column(field.name), field.type) for field in arrow_schema], schema=arrow_schema)


def _cast(column, target: pa.DataType):
    if column.type == target:
        return column
    # Spark keeps microseconds (it refuses nanosecond Parquet timestamps); nanoseconds are truncated here
    return column.cast(target, safe=not (pa.types.is_timestamp(column.type) and pa.types.is_timestamp(target)))
