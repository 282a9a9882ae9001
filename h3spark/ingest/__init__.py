"""Ingest: files (CSV, JSON, Parquet), datasets bundled with scikit-learn, Kafka topics."""

from h3spark.ingest._bundled import bundled_names, load_bundled
from h3spark.ingest._files import read_source

__all__ = ["read_source", "load_bundled", "bundled_names"]
