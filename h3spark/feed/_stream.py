"""StreamBatcher: records arriving on a stream (e.g. a Kafka topic) as fixed-size minibatches.

The consumer (the actors' Kafka transport) hands over an iterable of items; each item is
an Arrow ``RecordBatch``/``Table``, a JSON record (a dict, or its text as str/bytes), so
tests can use an in-memory list.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa

from h3spark.errors import ConfigError, DataError
from h3spark.feed._batching import Batch, rebatch
from h3spark.feed._columns import ColumnSpec, spec_from_arrow, to_numpy
from h3spark.feed._source import BatchSource

_JSON_FLUSH_ROWS = 1024


class StreamBatcher(BatchSource):
    """Fixed-size (features, labels) minibatches from a stream of Arrow batches or JSON records.

    >>> records = [{"features": [0.1, 0.2], "label": 1}, {"features": [0.3, 0.4], "label": 0}]
    >>> [batch.features.shape for batch in StreamBatcher(records, batch_size=2, feature_shape=(2,))]
    [(2, 2)]

    Every record is checked against ``feature_shape``; a bad record raises DataError naming
    its position in the stream. With ``drop_last=False`` the rows left when the stream ends
    come out as one smaller batch. Iterating consumes the underlying iterable.
    """

    def __init__(self, records: Iterable[Any], batch_size: int, feature_shape: tuple[int, ...], *,
                 features: str = "features", label: str | None = "label", dtype: str = "float32",
                 drop_last: bool = False, encoding: str | None = None):
        self.records, self.batch_size, self.drop_last = records, batch_size, drop_last
        self.features, self.label, self.encoding = features, label, encoding
        shape = tuple(feature_shape) if isinstance(feature_shape, (tuple, list)) else (feature_shape,)
        self._validate_params(shape)
        self._spec = ColumnSpec(features, np.dtype(dtype).name, tuple(int(size) for size in shape), encoding or "list")

    def _validate_params(self, shape: tuple) -> None:
        problems = []
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            problems.append(f"The 'batch_size' parameter of StreamBatcher must be an int in the range [1, inf). Got {self.batch_size!r} instead.")
        if not shape or not all(isinstance(size, int) and size > 0 for size in shape):
            problems.append(f"The 'feature_shape' parameter of StreamBatcher must be a tuple of positive ints. Got {shape!r} instead.")
        if self.encoding not in (None, "list", "binary"):
            problems.append(f"The 'encoding' parameter of StreamBatcher must be 'list', 'binary' or None. Got {self.encoding!r} instead.")
        if problems:
            raise ConfigError("StreamBatcher parameters", problems)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return self._spec.shape

    @property
    def feature_dtype(self) -> str:
        return self._spec.dtype

    @property
    def has_labels(self) -> bool:
        return self.label is not None

    def __iter__(self) -> Iterator[Batch]:
        return rebatch(self._chunks(), self.batch_size, self.drop_last)

    def _chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        pending: list[tuple[int, dict]] = []  # (position in the stream, JSON record)
        for position, item in enumerate(self.records):
            if isinstance(item, (pa.RecordBatch, pa.Table)):
                if pending:
                    yield self._json_chunk(pending)
                    pending = []
                yield self._arrow_chunk(item, position)
                continue
            pending.append((position, _as_record(item, position)))
            if len(pending) >= max(self.batch_size, _JSON_FLUSH_ROWS):
                yield self._json_chunk(pending)
                pending = []
        if pending:
            yield self._json_chunk(pending)

    def _arrow_chunk(self, item: pa.RecordBatch | pa.Table, position: int):
        where = f"stream item {position}: "
        for name in filter(None, (self.features, self.label)):
            if name not in item.schema.names:
                raise DataError(f"{where}the record batch has no column {name!r}; it has {item.schema.names}.")
        spec = self._spec if self.encoding else _arrow_spec(self._spec, item.schema.field(self.features).type)
        features = to_numpy(item.column(self.features), spec, where)
        if features.shape[1:] != self._spec.shape:
            raise DataError(f"{where}column {self.features!r} has shape {features.shape[1:]} per row, but the stream "
                            f"expects {self._spec.shape}.")
        labels = None
        if self.label:
            labels = to_numpy(item.column(self.label), spec_from_arrow(self.label, item.schema.field(self.label).type, None, where), where)
        return features, labels

    def _json_chunk(self, records: list[tuple[int, dict]]):
        rows = [self._json_features(record, position) for position, record in records]
        features = np.asarray(rows, dtype=self._spec.dtype).reshape((len(rows),) + self._spec.shape)
        labels = np.asarray([record[self.label] for _, record in records]) if self.label else None
        return features, labels

    def _json_features(self, record: dict, position: int) -> np.ndarray:
        for name in filter(None, (self.features, self.label)):
            if name not in record:
                raise DataError(f"stream record {position} has no field {name!r}; it has {sorted(record)}.")
        try:
            values = np.asarray(record[self.features], dtype=self._spec.dtype)
        except (TypeError, ValueError) as error:
            raise DataError(f"stream record {position}: field {self.features!r} is not numeric ({error}).") from None
        flat_ok = values.ndim == 1 and values.size == math.prod(self._spec.shape)
        if values.shape != self._spec.shape and not flat_ok:
            raise DataError(f"stream record {position}: field {self.features!r} has shape {values.shape}, but the "
                            f"stream expects {self._spec.shape}.")
        return values.reshape(self._spec.shape)


def _as_record(item: Any, position: int) -> dict:
    if isinstance(item, (str, bytes, bytearray)):
        try:
            item = json.loads(item)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"stream record {position} is not valid JSON: {error}.") from None
    if not isinstance(item, dict):
        raise DataError(f"stream record {position} must be a JSON object, an Arrow RecordBatch or Table. "
                        f"Got {type(item).__name__} instead.")
    return item


def _arrow_spec(spec: ColumnSpec, arrow_type: pa.DataType) -> ColumnSpec:
    encoding = "binary" if pa.types.is_fixed_size_binary(arrow_type) else "list"
    return ColumnSpec(spec.name, spec.dtype, spec.shape, encoding)
