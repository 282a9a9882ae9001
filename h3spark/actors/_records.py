"""Raw records and feature batches as envelopes, and raw records back as an Arrow table.

    >>> envelope = raw_envelope("reader", ['{"features": [0, 16], "label": 1}'], "json")
    >>> records_table(envelope).column_names
    ['features', 'label', '_corrupt_record']

A ``raw`` message carries records as text, one CSV line or JSON object each: ``text`` (uint8,
the UTF-8 records back to back) and ``offsets`` (int64, n + 1 positions: record i is
``text[offsets[i]:offsets[i + 1]]``); its meta names the ``format`` (csv or json), the CSV
``columns`` and, optionally, the ``split`` (``holdout`` records are evaluated, never trained on).
A ``features`` message carries ``features`` (n, ...) and, optionally, ``label`` (n,).

Parsing mirrors Spark's permissive reader: a record that is not one (a CSV line with another
number of fields, text that is not a JSON object, a field that does not parse as its type)
keeps its text in ``_corrupt_record``, and the pipeline sends its row to the quarantine.
"""

from __future__ import annotations

import csv
import json
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from h3spark.actors._envelope import Envelope
from h3spark.errors import DataError
from h3spark.ingest import CORRUPT_COLUMN

FORMATS = ("csv", "json")
_ARROW = {"float64": pa.float64(), "float32": pa.float32(), "int64": pa.int64(), "int32": pa.int32(),
          "string": pa.string(), "bool": pa.bool_()}


def raw_envelope(sender: str, records: Iterable[str], record_format: str, columns: list[str] | None = None,
                 meta: dict | None = None) -> Envelope:
    """A ``raw`` message of ``records`` (text, one record each); CSV records need their ``columns``."""
    if record_format not in FORMATS:
        raise ValueError(f"record_format must be one of {FORMATS}. Got {record_format!r} instead")
    if record_format == "csv" and not columns:
        raise ValueError("CSV records need their column names (columns=[...])")
    encoded = [record.encode("utf-8") for record in records]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(item) for item in encoded], out=offsets[1:])
    text = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    info = {"format": record_format, "records": len(encoded), **({"columns": list(columns)} if columns else {})}
    return Envelope("raw", sender, arrays={"text": text, "offsets": offsets}, meta={**info, **(meta or {})})


def features_envelope(sender: str, features: np.ndarray, labels: np.ndarray | None = None,
                      model_version: int | None = None, meta: dict | None = None) -> Envelope:
    """A ``features`` message: rows already preprocessed."""
    arrays = {"features": np.ascontiguousarray(features, dtype=np.float32)}
    if labels is not None:
        arrays["label"] = np.asarray(labels, dtype=np.int64)
    return Envelope("features", sender, model_version=model_version, arrays=arrays, meta=dict(meta or {}))


def record_texts(envelope: Envelope) -> list[str]:
    """The records of a ``raw`` message as text; undecodable bytes become U+FFFD (quarantined later)."""
    text, offsets = envelope.arrays.get("text"), envelope.arrays.get("offsets")
    if text is None or offsets is None or text.dtype != np.uint8 or offsets.ndim != 1 or len(offsets) < 1:
        raise DataError(f"raw message {envelope.id} from {envelope.sender} needs a uint8 array 'text' and an int64 "
                        f"array 'offsets'; it has {sorted(envelope.arrays)}.")
    bounds = offsets.astype(np.int64)
    if bounds[0] != 0 or bounds[-1] != len(text) or (np.diff(bounds) < 0).any():
        raise DataError(f"raw message {envelope.id} from {envelope.sender}: its offsets do not cut its "
                        f"{len(text)} bytes of text in order.")
    data = text.tobytes()
    return [data[start:stop].decode("utf-8", "replace") for start, stop in zip(bounds[:-1], bounds[1:])]


def records_table(envelope: Envelope, types: dict[str, str] | None = None, csv_default_type: str = "float64") -> pa.Table:
    """The records of a ``raw`` message as a table, with ``_corrupt_record`` holding the bad ones' text."""
    record_format = envelope.meta.get("format")
    texts = record_texts(envelope)
    if record_format == "csv":
        columns = envelope.meta.get("columns")
        if not isinstance(columns, list) or not columns or not all(isinstance(name, str) for name in columns):
            raise DataError(f"raw CSV message {envelope.id} from {envelope.sender} names no columns in its meta "
                            "('columns': [...]).")
        return _csv_table(texts, columns, types or {}, csv_default_type)
    if record_format == "json":
        return _json_table(texts, types or {})
    raise DataError(f"raw message {envelope.id} from {envelope.sender} has format {record_format!r}; "
                    f"use one of {', '.join(FORMATS)}.")


def _csv_table(texts: list[str], columns: list[str], types: dict[str, str], default: str) -> pa.Table:
    fields: list[list[str | None]] = [[] for _ in columns]
    corrupt: list[str | None] = []
    for text in texts:
        row = next(csv.reader([text]), [])
        good = len(row) == len(columns)
        corrupt.append(None if good else text)
        for values, value in zip(fields, row if good else [None] * len(columns)):
            values.append(value if value != "" else None)
    arrays = {}
    for name, values in zip(columns, fields):
        arrays[name] = _typed(values, types.get(name, default), corrupt, texts)
    return _with_corrupt(arrays, corrupt)


def _json_table(texts: list[str], types: dict[str, str]) -> pa.Table:
    rows: list[dict] = []
    corrupt: list[str | None] = []
    for text in texts:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        good = isinstance(value, dict)
        rows.append(value if good else {})
        corrupt.append(None if good else text)
    names = list(dict.fromkeys(name for row in rows for name in row))
    arrays = {}
    for name in names:
        values = [row.get(name) for row in rows]
        arrays[name] = _typed(values, types[name], corrupt, texts) if name in types else _inferred(values, corrupt, texts)
    return _with_corrupt(arrays, corrupt)


def _typed(values: list, target: str, corrupt: list, texts: list[str]) -> pa.Array:
    """``values`` as ``target``; a value that does not parse marks its row corrupt (and becomes null)."""
    if target == "string":
        return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values], pa.string())
    series = pd.Series(values, dtype=object)
    if target == "bool":
        parsed = series.map(lambda v: v if isinstance(v, bool) else
                            {"true": True, "false": False}.get(str(v).strip().lower()) if v is not None else None)
    else:
        parsed = pd.to_numeric(series.map(lambda v: None if isinstance(v, (bool, list, dict)) else v), errors="coerce")
        if target.startswith("int"):
            parsed = parsed.where(parsed.isna() | (parsed == np.round(parsed)), np.nan)
    bad = parsed.isna().to_numpy() & series.notna().to_numpy()
    for index in np.flatnonzero(bad):
        corrupt[index] = corrupt[index] or texts[index]
    cleaned = [None if (bad[i] or pd.isna(v)) else v for i, v in enumerate(parsed.tolist())]
    return pa.array(cleaned, _ARROW[target], from_pandas=True)


def _inferred(values: list, corrupt: list, texts: list[str]) -> pa.Array:
    """``values`` as Arrow infers them; rows whose value's kind differs from the first row's are corrupt."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        kinds = [_kind(value) for value in values]
        first = next((kind for kind in kinds if kind is not None), None)
        for index, kind in enumerate(kinds):
            if kind is not None and kind != first:
                corrupt[index] = corrupt[index] or texts[index]
        kept = [value if kind == first else None for value, kind in zip(values, kinds)]
        try:
            return pa.array(kept)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            return _typed(values, "string", corrupt, texts)


def _kind(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _with_corrupt(arrays: dict[str, pa.Array], corrupt: list[str | None]) -> pa.Table:
    arrays[CORRUPT_COLUMN] = pa.array(corrupt, pa.string())
    return pa.table(arrays)


def batch_arrays(envelope: Envelope) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``features`` (n, ...) and ``label`` (n,) or None of a ``features`` message, checked."""
    features, labels = envelope.arrays.get("features"), envelope.arrays.get("label")
    if features is None or features.ndim < 2:
        raise DataError(f"features message {envelope.id} from {envelope.sender} needs an array 'features' of shape "
                        f"(rows, ...); it has {sorted(envelope.arrays)}.")
    if labels is not None and labels.shape != (len(features),):
        raise DataError(f"features message {envelope.id} from {envelope.sender} has {len(features)} rows but labels "
                        f"of shape {labels.shape}; give one label per row.")
    return features, labels


def arrow_batch(features: np.ndarray, labels: np.ndarray | None, label: str = "label") -> pa.Table:
    """Rows as the table a StreamBatcher reads: ``features`` (fixed-size list of float32) and ``label``."""
    flat = np.ascontiguousarray(features, dtype=np.float32).reshape(len(features), -1)
    column = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
    columns = {"features": column}
    if labels is not None:
        columns[label] = pa.array(np.asarray(labels).astype(np.int64))
    return pa.table(columns)
