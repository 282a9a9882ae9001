"""A block of rows moving through workers, and the bad rows it leaves behind.

Workers never drop rows silently: a worker that finds bad rows calls
``block.reject(mask, reason)``. The rows leave the block and are kept, as the
original input row (JSON) and the reason, for the quarantine dataset.

Before any step, :func:`reject_unreadable` sends away the rows a reader could not read
faithfully: records Spark's reader marked malformed (``_corrupt_record``: a CSV row with
more or fewer fields than the header, broken JSON), strings that are not UTF-8, and strings
holding U+FFFD, the character Spark's CSV reader puts in place of bytes it cannot decode
(so a source whose text really holds U+FFFD has those rows quarantined too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import DataError
from h3spark.ingest import CORRUPT_COLUMN, REPLACEMENT_CHARACTER

QUARANTINE_SCHEMA = pa.schema([("row", pa.string()), ("reason", pa.string()), ("step", pa.string())])


class BadRowError(DataError):
    """A bad row in strict mode; the message names the row and the reason."""


@dataclass
class Block:
    """The current table, the original input and where each current row came from."""

    table: pa.Table
    original: pa.Table
    origin: np.ndarray
    strict: bool = False
    step: str = ""
    rejected: list[tuple[np.ndarray, str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, table: pa.Table, strict: bool = False) -> "Block":
        return cls(table=table, original=table, origin=np.arange(table.num_rows), strict=strict)

    def reject(self, mask, reason) -> None:
        """Move the rows where ``mask`` is true to quarantine; ``reason`` is a string or one per row."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        rows = np.flatnonzero(mask)
        reasons = [reason] * len(rows) if isinstance(reason, str) else [str(r) for r in np.asarray(reason, dtype=object)[rows]]
        if self.strict:
            raise BadRowError(f"bad row in step {self.step}: {reasons[0]}. Row: {self._row_json(self.origin[rows[0]])}. "
                              "Fix the data, or set preprocess.strict: false to quarantine bad rows instead.")
        for row, text in zip(rows, reasons):
            self.rejected.append((self.origin[row], text, self.step))
        keep = ~mask
        self.table = self.table.filter(pa.array(keep))
        self.origin = self.origin[keep]

    def replace(self, table: pa.Table) -> None:
        """Set the table after a 1:1 worker (same rows, same order)."""
        if table.num_rows != len(self.origin):
            raise DataError(f"step {self.step} returned {table.num_rows} rows for {len(self.origin)}; a worker must keep "
                            "every row (reject bad ones with a '_reject_reason' column instead of dropping them).")
        self.table = table

    @property
    def rows_in(self) -> int:
        return self.original.num_rows

    def quarantine_table(self) -> pa.Table:
        """The rejected rows: original row as JSON, reason, step."""
        rows = [self._row_json(index) for index, _, _ in self.rejected]
        return pa.table([pa.array(rows, pa.string()), pa.array([r for _, r, _ in self.rejected], pa.string()),
                         pa.array([s for _, _, s in self.rejected], pa.string())], schema=QUARANTINE_SCHEMA)

    def _row_json(self, index: int) -> str:
        row = self.original.slice(int(index), 1)
        row = {name: _value(column) for name, column in zip(row.column_names, row.columns)}
        return json.dumps(row, default=str, sort_keys=True, allow_nan=True)


def _value(column: pa.ChunkedArray):
    """The one value of a column slice; text that is not UTF-8 shows its bad bytes as \\xNN."""
    if _is_text(column.type):
        raw = column.cast(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary())[0].as_py()
        return None if raw is None else raw.decode("utf-8", "backslashreplace")
    return column[0].as_py()


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def reject_unreadable(block: Block) -> None:
    """Quarantine the rows a reader could not read faithfully (see the module docstring)."""
    block.step = "read"
    if CORRUPT_COLUMN in block.table.column_names:
        raw = block.table.column(CORRUPT_COLUMN)
        block.reject(pc.is_valid(raw).to_numpy(zero_copy_only=False), _malformed_reasons(raw))
        block.replace(block.table.drop_columns([CORRUPT_COLUMN]))
    for name, arrow_type in zip(block.table.column_names, block.table.schema.types):
        if _is_text(arrow_type):
            block.reject(_not_utf8(block.table.column(name)), f"invalid UTF-8 in column {name!r}")
            block.reject(_replaced(block.table.column(name)),
                         f"invalid UTF-8 in column {name!r} (the reader replaced undecodable bytes with U+FFFD)")


def _malformed_reasons(raw: pa.ChunkedArray) -> np.ndarray:
    reasons = np.full(len(raw), "malformed record (wrong number of fields, broken JSON or a value of the wrong type)",
                      dtype=object)
    reasons[_not_utf8(raw) | _replaced(raw)] = "malformed record (invalid UTF-8)"
    return reasons


def _replaced(column: pa.ChunkedArray) -> np.ndarray:
    """True where a string holds U+FFFD (a byte-wise search: it needs no valid UTF-8)."""
    return pc.fill_null(pc.match_substring(column, REPLACEMENT_CHARACTER), False).to_numpy(zero_copy_only=False)


def _not_utf8(column: pa.ChunkedArray) -> np.ndarray:
    """True where a string is not valid UTF-8 (Arrow does not check what Parquet or Spark hand it)."""
    try:
        column.validate(full=True)
        return np.zeros(len(column), dtype=bool)
    except pa.ArrowInvalid:
        raw = column.cast(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary())
        return np.array([value is not None and not _decodes(value) for value in raw.to_pylist()], dtype=bool)


def _decodes(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
