"""Read a configured source into a Spark DataFrame."""

from __future__ import annotations

import logging

from h3spark.config import SourceConfig
from h3spark.errors import DataError, DependencyError, StorageError
from h3spark.ingest._bundled import load_bundled
from h3spark.ingest._columns import CORRUPT_COLUMN
from h3spark.ingest._jdbc import read_jdbc
from h3spark.spark import spark_errors
from h3spark.storage import resolve_source, resolve_uri

logger = logging.getLogger(__name__)

_CSV_DEFAULTS = {"header": "true", "inferSchema": "true"}


def read_source(spark, source: SourceConfig, workdir: str | None = None):
    """Return a DataFrame of the source's rows (a batch read; Kafka reads current contents)."""
    if source.format == "bundled":
        return spark.createDataFrame(load_bundled(source.name))
    if source.format == "jdbc":
        return read_jdbc(spark, source.jdbc)
    if source.format == "kafka":
        reader = _kafka_reader()
        return reader(spark, source)
    uri = resolve_uri(source.path, workdir)
    if source.format == "parquet":
        uri = resolve_source(uri)  # a published dataset: its current version
    options = {**(_CSV_DEFAULTS if source.format == "csv" else {}), **{k: str(v) for k, v in source.options.items()}}
    logger.info("reading %s source=%s", source.format, uri)
    with spark_errors(f"reading source.path {uri}", {DataError: "Check the path in the config.",
                                                     StorageError: "Check that the storage is up and the path readable."}):
        return _load(spark, source.format, options, uri)


def _load(spark, file_format: str, options: dict, uri: str):
    """Spark's reader; a CSV one keeps each row with the wrong number of fields in ``_corrupt_record``
    (without that column in the schema, Spark drops extra fields and pads short rows silently)."""
    reader = spark.read.options(**options).format(file_format)
    if file_format != "csv" or options.get("mode", "PERMISSIVE").upper() != "PERMISSIVE":
        return reader.load(uri)
    from pyspark.sql.types import StringType, StructField, StructType

    inferred = reader.load(uri).schema  # the one inference pass inferSchema makes anyway
    if CORRUPT_COLUMN in inferred.names:
        return reader.load(uri)
    schema = StructType(inferred.fields + [StructField(CORRUPT_COLUMN, StringType())])
    options = {**{key: value for key, value in options.items() if key != "inferSchema"},
               "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    return spark.read.options(**options).schema(schema).format("csv").load(uri)


def _kafka_reader():
    try:
        from h3spark.ingest._kafka import read_kafka_batch
    except ImportError:
        raise DependencyError("source.format 'kafka' is not available in this build of h3spark.") from None
    return read_kafka_batch
