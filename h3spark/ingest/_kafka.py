"""A batch read of a Kafka topic's current contents, message values decoded as JSON.

    >>> frame = read_kafka_batch(spark, SourceConfig(format="kafka", topic="events",
    ...                                              bootstrap_servers="127.0.0.1:9092"))

Uses Spark's Kafka source (``org.apache.spark:spark-sql-kafka-0-10_2.13``), which must be
on the session's classpath: set ``spark.conf: {spark.jars.packages: COORDINATE}`` or pass
``--packages COORDINATE`` to spark-submit, with the coordinate that
``h3spark.services.ensure_spark_kafka_package()`` resolves (pyspark 4.3.0's own release of the
jar is not on Maven Central; 4.2.0 is, and works with it). A message whose value is not a JSON object
keeps its text in ``_corrupt_record``, which preprocessing sends to quarantine.
``source.options.schema`` (a DDL string such as ``"x double, label long"``) skips inference.
"""

from __future__ import annotations

import logging

from h3spark.errors import DataError, DependencyError
from h3spark.ingest._columns import CORRUPT_COLUMN
from h3spark.spark import spark_errors

logger = logging.getLogger(__name__)

_DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def read_kafka_batch(spark, source):
    """The topic's messages from the earliest to the latest offset, as a DataFrame of JSON fields."""
    options = {k: str(v) for k, v in source.options.items() if k != "schema"}
    bootstrap = source.bootstrap_servers or options.pop("kafka.bootstrap.servers", _DEFAULT_BOOTSTRAP)
    reader = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", source.topic)
              .option("startingOffsets", "earliest").option("endingOffsets", "latest").options(**options))
    logger.info("reading kafka topic=%s bootstrap=%s", source.topic, bootstrap)
    with spark_errors(f"reading Kafka topic {source.topic!r} from {bootstrap}", _hints()):
        raw = reader.load().selectExpr("CAST(value AS STRING) AS value")
        return _decode_json(spark, raw, source.options.get("schema"))


def _decode_json(spark, raw, schema: str | None):
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    if schema is None:
        lines = raw.select("value").rdd.map(lambda row: row.value or "")
        if lines.isEmpty():
            raise DataError("the Kafka topic has no messages; there is nothing to read.")
        return spark.read.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COLUMN).json(lines)
    parsed = StructType.fromDDL(schema).add(StructField(CORRUPT_COLUMN, StringType()))
    decoded = raw.select(F.from_json("value", parsed, {"mode": "PERMISSIVE",
                                                       "columnNameOfCorruptRecord": CORRUPT_COLUMN}).alias("row"))
    return decoded.select("row.*")


def _package_hint() -> str:
    """How to put Spark's Kafka source on the classpath, without guessing a release that may not exist."""
    return ("Add spark.conf: {spark.jars.packages: org.apache.spark:spark-sql-kafka-0-10_2.13:VERSION} to the config "
            "(or spark-submit --packages), with the coordinate h3spark.services.spark_kafka_package() names once "
            "'h3spark services up kafka' has resolved a release on Maven Central (pyspark's own version may not be "
            "there yet).")


def _hints() -> dict[type, str]:
    """How to fix what reading a topic raises, by class (see h3spark.spark's translation table)."""
    return {DependencyError: _package_hint(),
            DataError: "Is the broker up (h3spark services up kafka), and does the topic exist?"}
