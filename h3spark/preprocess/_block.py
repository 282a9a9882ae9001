"""A block of rows moving through workers, and the bad rows it leaves behind.

Workers never drop rows silently: a worker that finds bad rows calls
``block.reject(mask, reason)``. The rows leave the block and are kept, as the
original input row (JSON) and the reason, for the quarantine dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from h3spark.errors import DataError

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
        row = self.original.slice(int(index), 1).to_pylist()[0]
        return json.dumps(row, default=str, sort_keys=True, allow_nan=True)
