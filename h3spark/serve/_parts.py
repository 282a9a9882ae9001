"""Task-side Parquet: a Spark task streams its batches of predictions into its own part file."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from h3spark.storage import filesystem_for, join_uri, local_path


class PartWriter:
    """One part file ``name`` in ``folder_uri``, written batch by batch (file://: streamed to disk;
    hdfs://: built in memory and written once at :meth:`close`). Nothing is created for no rows."""

    def __init__(self, folder_uri: str, name: str, storage: dict):
        self.uri, self.storage = join_uri(folder_uri, name), storage
        self.rows = 0
        self._sink = self._writer = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._open(table.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _open(self, schema: pa.Schema) -> None:
        if self.uri.startswith("file://"):
            path = local_path(self.uri)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._writer = pq.ParquetWriter(path, schema, compression="snappy")
        else:
            self._sink = pa.BufferOutputStream()
            self._writer = pq.ParquetWriter(self._sink, schema, compression="snappy")

    def close(self) -> str | None:
        """Finish the file; its URI, or None when no row came."""
        if self._writer is None:
            return None
        self._writer.close()
        if self._sink is not None:
            fs = filesystem_for(self.uri, self.storage.get("webhdfs_url"), self.storage.get("hdfs_user"))
            fs.write_bytes(self.uri, self._sink.getvalue().to_pybytes())
        return self.uri
