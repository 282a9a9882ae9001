"""Reading a source on real local Spark: Spark's failures become h3spark's errors by type, with a way to fix them."""

from __future__ import annotations

import pytest

from h3spark.config import SourceConfig
from h3spark.errors import DataError, DependencyError
from h3spark.ingest import read_source


def test_a_missing_path_is_a_data_error_naming_it(spark, tmp_path):
    source = SourceConfig(format="json", path=str(tmp_path / "nowhere.json"))
    with pytest.raises(DataError) as caught:
        read_source(spark, source)
    message = str(caught.value)
    assert message.startswith("reading source.path file://") and "nowhere.json does not exist" in message
    assert message.endswith("Check the path in the config.") and "SQLSTATE" not in message


def test_kafka_without_spark_s_kafka_source_is_a_dependency_error_saying_how_to_add_it(spark):
    source = SourceConfig(format="kafka", topic="events", bootstrap_servers="127.0.0.1:9092")
    with pytest.raises(DependencyError) as caught:
        read_source(spark, source)  # the shared session has no spark-sql-kafka jar
    message = str(caught.value)
    assert message.startswith("reading Kafka topic 'events' from 127.0.0.1:9092 failed: Spark has no data source 'kafka'")
    assert "spark.jars.packages" in message and "\tat " not in message
