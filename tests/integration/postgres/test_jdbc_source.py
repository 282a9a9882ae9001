"""The jdbc source against the real PostgreSQL: partitioned reads into a DataFrame, rows and types."""

from __future__ import annotations

from decimal import Decimal

import pytest

from h3spark.config import JdbcSourceConfig, SourceConfig
from h3spark.errors import DataError

ROWS = 1000


@pytest.fixture
def events(postgres, table):
    postgres.query(f"CREATE TABLE {table} (id bigint PRIMARY KEY, x double precision, n integer, name text, "
                   "flag boolean, ts timestamp, amount numeric(10,2))")
    postgres.query(f"INSERT INTO {table} SELECT g, g * 0.5, g % 7, 'r' || g, g % 2 = 0, "
                   f"timestamp '2026-01-01' + g * interval '1 minute', g / 4.0 FROM generate_series(1, {ROWS}) g")
    return table


def _sizes(frame) -> list[int]:
    return frame.rdd.mapPartitions(lambda rows: [sum(1 for _ in rows)]).collect()


def test_a_table_is_read_in_partitions_with_its_rows_and_types(jdbc_spark, postgres, events):
    from h3spark.ingest import read_jdbc

    frame = read_jdbc(jdbc_spark, JdbcSourceConfig(**postgres.config(table=events, partition_column="id",
                                                                     num_partitions=4)))

    assert [(f.name, f.dataType.simpleString()) for f in frame.schema.fields] == [
        ("id", "bigint"), ("x", "double"), ("n", "int"), ("name", "string"), ("flag", "boolean"),
        ("ts", "timestamp"), ("amount", "decimal(10,2)")]
    sizes = _sizes(frame)
    assert len(sizes) == 4 and sum(sizes) == ROWS and min(sizes) > 0
    row = frame.where("id = 10").first()
    assert (row.x, row.n, row.name, row.flag, row.amount) == (5.0, 3, "r10", True, Decimal("2.50"))
    totals = frame.selectExpr("sum(id)", "count(DISTINCT ts)").first()
    assert tuple(totals) == (ROWS * (ROWS + 1) // 2, ROWS)


def test_a_query_with_given_bounds_reads_through_read_source(jdbc_spark, postgres, events):
    from h3spark.ingest import read_source

    source = SourceConfig(format="jdbc", jdbc=postgres.config(query=f"SELECT id, name FROM {events} WHERE flag",
                                                              partition_column="id", lower_bound=0,
                                                              upper_bound=ROWS, num_partitions=3))
    frame = read_source(jdbc_spark, source)

    assert frame.columns == ["id", "name"] and frame.rdd.getNumPartitions() == 3
    assert sorted(r.id for r in frame.collect()) == list(range(2, ROWS + 1, 2))


def test_an_empty_table_reads_in_one_partition(jdbc_spark, postgres, table):
    from h3spark.ingest import read_jdbc

    postgres.query(f"CREATE TABLE {table} (id bigint, v text)")
    frame = read_jdbc(jdbc_spark, JdbcSourceConfig(**postgres.config(table=table, partition_column="id")))
    assert frame.rdd.getNumPartitions() == 1 and frame.count() == 0


def test_a_text_partition_column_is_refused_with_the_fix(jdbc_spark, postgres, events):
    from h3spark.ingest import read_jdbc

    with pytest.raises(DataError, match="source.jdbc.partition_column: name must be a numeric column .* it is string"):
        read_jdbc(jdbc_spark, JdbcSourceConfig(**postgres.config(table=events, partition_column="name")))


def test_a_missing_table_is_a_storage_error_naming_it(jdbc_spark, postgres, table):
    from h3spark.errors import StorageError
    from h3spark.ingest import read_jdbc

    with pytest.raises(StorageError, match=f'reading {table} from .* failed: PSQLException: .*"{table}" does not exist'):
        read_jdbc(jdbc_spark, JdbcSourceConfig(**postgres.config(table=table)))
