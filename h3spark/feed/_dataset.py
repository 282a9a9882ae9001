"""A published dataset's split, as the feeder reads it: through its manifest, never by listing."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa

from h3spark.errors import DataError
from h3spark.feed._columns import ColumnSpec, spec_from_arrow, spec_from_manifest, to_numpy
from h3spark.feed._plan import RowGroup, Segment
from h3spark.storage import (ALL_ROWS, FileSystem, MANIFEST_NAME, describe_splits, filesystem_for, join_uri, read_manifest,
                             resolve_published)

logger = logging.getLogger(__name__)

DEFAULT_SPLIT = "train"
_MAX_OPEN_FILES = 8


class FeedDataset:
    """One split of a published dataset: its files, row counts and column specs.

    ``features``/``label`` default to the manifest's; ``label=False`` feeds no labels. A
    manifest that names no features column (``"features": null``) is an error unless
    ``features`` names one; one without a ``features`` key means the column ``features``.
    A file that cannot be read is a DataError naming it (and its row group).
    """

    def __init__(self, uri: str, split: str | None = None, features: str | None = None, label: str | None | bool = None,
                 fs: FileSystem | None = None, webhdfs_url: str | None = None):
        self.fs = fs or filesystem_for(uri, webhdfs_url)
        self.uri = resolve_published(uri, self.fs)  # one version for the manifest and every file read
        self.manifest = read_manifest(self.uri, self.fs)
        self.where = join_uri(self.uri, MANIFEST_NAME)
        self.split, entry = self._choose_split(split)
        self.files = _checked_files(entry, f"{self.where}: splits.{self.split}")
        if not self.files:
            raise DataError(f"{self.where}: split {self.split!r} has no Parquet files, so there is nothing to feed.")
        self.rows = sum(item["rows"] for item in self.files)
        self._metadata: dict[int, Any] = {}
        self.features = features or self._manifest_features()
        self.label = None if label is False else (label or self.manifest.get("label"))
        self.specs = self._column_specs()

    @property
    def feature_spec(self) -> ColumnSpec:
        return self.specs[self.features]

    @property
    def label_spec(self) -> ColumnSpec | None:
        return self.specs.get(self.label) if self.label else None

    @property
    def column_names(self) -> list[str]:
        """The columns of the split's files (of its first file's schema)."""
        return self._file_schema(0).names

    def require_label(self) -> str:
        """The label column; a DataError when the dataset has none (training needs labels)."""
        if self.label is None:
            raise DataError(f"{self.where}: the dataset names no label column (its manifest's \"label\" is "
                            f"{json.dumps(self.manifest.get('label'))}); its files have {self.column_names}. Training "
                            "needs labels: publish the source with a column named 'label', or preprocess it and name "
                            "the label column with preprocess.label.")
        return self.label

    def _manifest_features(self) -> str:
        if "features" in self.manifest and self.manifest["features"] is None:
            raise DataError(f"{self.where}: the dataset names no features column (\"features\": null in its manifest); "
                            f"its files have {self.column_names}. Feeding and training need one vector column: "
                            "preprocess the source into one (a preprocess: section whose assemble step writes "
                            "'features'), or pass features= naming a list column.")
        return self.manifest.get("features") or "features"

    def _choose_split(self, split: str | None) -> tuple[str, dict]:
        splits = self.manifest.get("splits")
        if not isinstance(splits, dict):
            logger.info("manifest has no splits; listing the files of %s", self.uri)
            with _readable(f"{self.uri}: a Parquet file"):
                splits = describe_splits(self.uri, self.fs)
        wanted = split or (DEFAULT_SPLIT if DEFAULT_SPLIT in splits else ALL_ROWS)
        if wanted not in splits:
            raise DataError(f"{self.where}: the dataset has no split {wanted!r}; it has {sorted(splits) or 'no Parquet files'}. "
                            "Pass one of those as split=.")
        return wanted, splits[wanted]

    def _column_specs(self) -> dict[str, ColumnSpec]:
        columns = self.manifest.get("columns") or {}
        names = [self.features] + ([self.label] if self.label else [])
        schema = self._file_schema(0)
        specs = {}
        for name in names:
            if name not in schema.names:
                raise DataError(f"{self.where}: the dataset has no column {name!r}; its files have {schema.names}. "
                                "Name the right column with features=/label= or fix the manifest.")
            if name in columns:
                specs[name] = spec_from_manifest(name, columns[name], self.where)
            else:
                specs[name] = spec_from_arrow(name, schema.field(name).type, self._sample(name), self.where)
            _check_arrow_type(specs[name], schema.field(name).type, self.where)
        return specs

    def _file_schema(self, file: int) -> pa.Schema:
        return self.parquet_metadata(file).schema.to_arrow_schema()

    def _sample(self, name: str):
        import pyarrow.parquet as pq

        metadata = self.parquet_metadata(0)
        with self.fs.open_input(self.file_uri(0)) as handle, _readable(self.describe(0, 0)):
            parquet = pq.ParquetFile(handle, metadata=metadata)
            return parquet.read_row_group(0, columns=[name]).column(name) if parquet.num_row_groups else None

    def file_uri(self, file: int) -> str:
        return join_uri(self.uri, self.files[file]["path"])

    def describe(self, file: int, row_group: int | None = None) -> str:
        """``URI/PATH`` of one file, with `` row group N`` when given (for messages)."""
        return self.file_uri(file) + ("" if row_group is None else f" row group {row_group}")

    def parquet_metadata(self, file: int):
        """The footer of one file, read once (a small range read on HDFS)."""
        if file not in self._metadata:
            import pyarrow.parquet as pq

            footer = f"{self.describe(file)} (its footer)"
            with self.fs.open_input(self.file_uri(file)) as handle, _readable(footer):
                metadata = pq.read_metadata(handle)
            if metadata.num_rows != self.files[file]["rows"]:
                raise DataError(f"{self.where}: {self.files[file]['path']} has {metadata.num_rows} rows but the manifest "
                                f"says {self.files[file]['rows']}; the manifest is stale. Publish the dataset again.")
            self._metadata[file] = metadata
        return self._metadata[file]

    def row_groups(self) -> list[RowGroup]:
        """Every row group of the split in order; footers are read only for multi-group files."""
        groups = []
        for file, item in enumerate(self.files):
            if item["row_groups"] == 1:
                groups.append(RowGroup(file, 0, item["rows"]))
                continue
            metadata = self.parquet_metadata(file)
            groups += [RowGroup(file, index, metadata.row_group(index).num_rows) for index in range(metadata.num_row_groups)]
        return groups


class ChunkReader:
    """Reads segments as numpy chunks, keeping a few files open and, optionally, a cache."""

    def __init__(self, dataset: FeedDataset, cache: dict | None = None):
        self._dataset = dataset
        self._cache = cache
        self._open: OrderedDict[int, tuple[Any, Any]] = OrderedDict()

    def read(self, segment: Segment) -> tuple[np.ndarray, np.ndarray | None]:
        key = (segment.group.file, segment.group.index)
        arrays = self._cache.get(key) if self._cache is not None else None
        if arrays is None:
            arrays = self._decode(segment.group)
            if self._cache is not None:
                self._cache[key] = arrays
        features, labels = arrays
        if segment.start == 0 and segment.stop == len(features):
            return features, labels
        window = slice(segment.start, segment.stop)
        return features[window], None if labels is None else labels[window]

    def _decode(self, group: RowGroup) -> tuple[np.ndarray, np.ndarray | None]:
        dataset = self._dataset
        columns = [dataset.features] + ([dataset.label] if dataset.label else [])
        where = f"{dataset.files[group.file]['path']} row group {group.index}: "
        with _readable(dataset.describe(group.file, group.index)):
            table = self._parquet(group.file).read_row_group(group.index, columns=columns)
        features = to_numpy(table.column(dataset.features), dataset.feature_spec, where)
        labels = to_numpy(table.column(dataset.label), dataset.label_spec, where) if dataset.label else None
        return features, labels

    def _parquet(self, file: int):
        import pyarrow.parquet as pq

        if file in self._open:
            self._open.move_to_end(file)
            return self._open[file][1]
        if len(self._open) >= _MAX_OPEN_FILES:
            _, (handle, _) = self._open.popitem(last=False)
            handle.close()
        handle = self._dataset.fs.open_input(self._dataset.file_uri(file))
        self._open[file] = (handle, pq.ParquetFile(handle, metadata=self._dataset.parquet_metadata(file)))
        return self._open[file][1]

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1][0].close()


def read_chunks(dataset: FeedDataset, segments: Iterable[Segment], cache: dict | None = None,
                threads: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The chunks of ``segments``, in their order. With ``threads`` > 1, that many row groups are
    read and decoded ahead in a pool (pyarrow releases the GIL while it reads and decodes), each
    thread with its own open files; the order, and so every shuffle, stays the same."""
    if threads <= 1:
        reader = ChunkReader(dataset, cache)
        try:
            yield from (reader.read(segment) for segment in segments)
        finally:
            reader.close()
        return
    local, readers = threading.local(), []

    def read(segment: Segment):
        if not hasattr(local, "reader"):
            local.reader = ChunkReader(dataset, cache)
            readers.append(local.reader)
        return local.reader.read(segment)

    pending: deque = deque()
    pool = ThreadPoolExecutor(threads, thread_name_prefix="h3spark-read")
    try:
        for segment in segments:
            pending.append(pool.submit(read, segment))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        for reader in readers:
            reader.close()


@contextmanager
def _readable(what: str):
    """Raise pyarrow's error on a damaged file as a DataError naming ``what`` and what to do."""
    try:
        yield
    except (OSError, pa.ArrowException) as error:
        reason = " ".join(str(error).split())
        raise DataError(f"{what}: cannot be read ({reason}). The file is damaged or was replaced after publishing; "
                        "publish the dataset again (or restore the file from a copy).") from None


def _checked_files(entry: Any, where: str) -> list[dict]:
    files = entry.get("files") if isinstance(entry, dict) else None
    if not isinstance(files, list):
        raise DataError(f"{where} has no 'files' list; publish the dataset again so that its manifest describes its files.")
    for index, item in enumerate(files):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not all(
                isinstance(item.get(key), int) and item[key] >= 0 for key in ("rows", "row_groups")):
            raise DataError(f"{where}.files[{index}] must be {{path: str, rows: int, row_groups: int}}. Got {item!r} instead.")
    return files


def _check_arrow_type(spec: ColumnSpec, arrow_type: pa.DataType, where: str) -> None:
    if spec.encoding == "binary":
        needed = spec.width * np.dtype(spec.dtype).itemsize
        ok = pa.types.is_fixed_size_binary(arrow_type) and arrow_type.byte_width == needed
        wanted = f"fixed_size_binary({needed})"
    elif spec.encoding == "list":
        ok = pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or (
            pa.types.is_fixed_size_list(arrow_type) and arrow_type.list_size == spec.width)
        wanted = f"a list of {spec.width} values"
    else:
        ok = not pa.types.is_nested(arrow_type) and not pa.types.is_binary(arrow_type)
        wanted = "a numeric scalar"
    if not ok:
        raise DataError(f"{where}: column {spec.name!r} is {arrow_type} in the Parquet files, but the manifest "
                        f"describes it as {spec.encoding} {spec.dtype} shape {spec.shape}, which needs {wanted}.")
