"""The jdbc sink against the real PostgreSQL: batched writes, append and overwrite, all rows or none."""

from __future__ import annotations

import pytest

from h3spark.config import JdbcSinkConfig
from h3spark.errors import JobFailedError, StorageError

ROWS = 2500


def _frame(spark, rows: int = ROWS, partitions: int = 4):
    return spark.range(0, rows, numPartitions=partitions).selectExpr(
        "id", "CAST(id AS DOUBLE) * 0.25 AS score", "concat('p', id) AS label", "id % 3 = 0 AS ok")


def _sink(postgres, table: str, **settings) -> JdbcSinkConfig:
    return JdbcSinkConfig(**postgres.config(table=table, batch_size=100, **settings))


def _columns(postgres, table: str) -> list[str]:
    return postgres.query(f"SELECT column_name || ' ' || data_type FROM information_schema.columns "
                          f"WHERE table_name = '{table}' ORDER BY ordinal_position")


def test_a_frame_is_written_in_batches_then_appended(jdbc_spark, postgres, table):
    from h3spark.storage import write_jdbc

    write_jdbc(_frame(jdbc_spark), _sink(postgres, table, mode="overwrite"))

    assert _columns(postgres, table) == ["id bigint", "score double precision", "label text", "ok boolean"]
    assert postgres.query(f"SELECT count(*), sum(id), sum(score), count(*) FILTER (WHERE ok) FROM {table}") == [
        f"{ROWS}|{ROWS * (ROWS - 1) // 2}|{ROWS * (ROWS - 1) / 2 * 0.25}|{(ROWS + 2) // 3}"]
    assert postgres.query(f"SELECT label FROM {table} WHERE id = 7") == ["p7"]

    write_jdbc(_frame(jdbc_spark, rows=10), _sink(postgres, table))
    assert postgres.query(f"SELECT count(*), count(DISTINCT id) FROM {table}") == [f"{ROWS + 10}|{ROWS}"]
    assert postgres.tables_like(f"{table}_h3s_%") == []


def test_overwrite_replaces_the_rows_and_the_columns(jdbc_spark, postgres, table):
    from h3spark.storage import write_jdbc

    postgres.query(f"CREATE TABLE {table} (old_column int); INSERT INTO {table} VALUES (1), (2)")
    write_jdbc(_frame(jdbc_spark, rows=5), _sink(postgres, table, mode="overwrite"))
    assert [c.split()[0] for c in _columns(postgres, table)] == ["id", "score", "label", "ok"]
    assert postgres.query(f"SELECT count(*) FROM {table}") == ["5"]


def test_overwrite_with_truncate_keeps_the_table_definition(jdbc_spark, postgres, table):
    from h3spark.storage import write_jdbc

    postgres.query(f"CREATE TABLE {table} (id bigint PRIMARY KEY, score real, label varchar(20), ok boolean); "
                   f"INSERT INTO {table} VALUES (100000, 1, 'old', true)")
    write_jdbc(_frame(jdbc_spark, rows=50), _sink(postgres, table, mode="overwrite", truncate=True))
    assert _columns(postgres, table) == ["id bigint", "score real", "label character varying", "ok boolean"]
    assert postgres.query(f"SELECT count(*), max(id) FROM {table}") == ["50|49"]
    assert postgres.query(f"SELECT indexdef LIKE '%UNIQUE%' FROM pg_indexes WHERE tablename = '{table}'") == ["t"]


def test_a_write_failing_in_a_task_leaves_the_table_as_it_was(jdbc_spark, postgres, table):
    from pyspark.sql import functions as F

    from h3spark.storage import write_jdbc

    postgres.query(f"CREATE TABLE {table} (id bigint, score double precision); INSERT INTO {table} VALUES (-1, 0)")

    @F.udf("double")
    def fails_late(value):
        if value == ROWS - 3:  # in the last partition, after the others have committed theirs
            raise ValueError("row refused on purpose")
        return value * 0.5

    frame = jdbc_spark.range(0, ROWS, numPartitions=4).select("id", fails_late("id").alias("score"))
    with pytest.raises(JobFailedError, match="row refused on purpose"):
        write_jdbc(frame, _sink(postgres, table, mode="overwrite"))

    assert postgres.query(f"SELECT id FROM {table}") == ["-1"]
    assert postgres.tables_like(f"{table}_h3s_%") == []


def test_an_append_the_table_refuses_leaves_it_as_it_was(jdbc_spark, postgres, table):
    from pyspark.sql import functions as F

    from h3spark.storage import write_jdbc

    postgres.query(f"CREATE TABLE {table} (id bigint, score integer, label text, ok boolean); "
                   f"INSERT INTO {table} VALUES (-1, 0, 'old', false)")
    with pytest.raises(StorageError, match=f'moving the rows of {table}_h3s_[0-9a-f]+ into {table} failed: '
                                           'PSQLException: ERROR: column "score" is of type integer'):
        write_jdbc(_frame(jdbc_spark, rows=20).withColumn("score", F.col("label")), _sink(postgres, table))

    assert postgres.query(f"SELECT count(*) FROM {table}") == ["1"]
    assert postgres.tables_like(f"{table}_h3s_%") == []
