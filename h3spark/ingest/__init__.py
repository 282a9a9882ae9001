"""Ingest: files (CSV, JSON, Parquet), datasets bundled with scikit-learn, Kafka topics, database tables (JDBC)."""

from h3spark.ingest._bundled import bundled_names, load_bundled
from h3spark.ingest._columns import CORRUPT_COLUMN, REPLACEMENT_CHARACTER, checked_rows, manifest_columns
from h3spark.ingest._files import read_source
from h3spark.ingest._jdbc import read_jdbc
from h3spark.ingest._parquet_tasks import ParquetFiles, ParquetTasks, parquet_files

__all__ = ["read_source", "read_jdbc", "parquet_files", "ParquetFiles", "ParquetTasks", "load_bundled", "bundled_names", "checked_rows",
           "manifest_columns", "CORRUPT_COLUMN", "REPLACEMENT_CHARACTER"]
