"""A database table (or query) read with Spark's JDBC source, in parallel by a numeric column.

    >>> frame = read_jdbc(spark, JdbcSourceConfig(url="jdbc:postgresql://127.0.0.1:5433/postgres", user="h3spark",
    ...                   password_file="~/.cache/h3spark/services/postgres/password", table="events",
    ...                   partition_column="id", num_partitions=4))

With ``partition_column``, Spark reads ``num_partitions`` ranges of that column on as many
connections at once; without ``lower_bound``/``upper_bound`` they are fetched first (one
``SELECT min, max``). The bounds only set the ranges' stride: rows outside them (and NULLs)
are read too. The driver's jar must be on Spark's classpath (``spark.jars.packages``; see
h3spark.storage.JDBC_DRIVERS); credentials as in h3spark.storage's JDBC module.
"""

from __future__ import annotations

import logging
import math

from h3spark.config import JdbcSourceConfig
from h3spark.errors import DataError
from h3spark.storage import jdbc_errors, jdbc_options, quote_identifier, read_password, require_driver

logger = logging.getLogger(__name__)

_QUERY_ALIAS = "h3spark_query"
_NUMERIC_TYPES = ("ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType")


def read_jdbc(spark, config: JdbcSourceConfig, where: str = "source.jdbc"):
    """A DataFrame of the table's (or query's) rows, read in ranges of ``partition_column`` when set."""
    password = read_password(config, where)
    options = jdbc_options(config, where, password)
    require_driver(spark, options["driver"])
    relation = config.table or f"({config.query}) {_QUERY_ALIAS}"
    options.update(dbtable=relation, fetchsize=str(config.fetch_size))
    what = f"reading {config.table or 'the query'} from {config.url}"
    with jdbc_errors(what, password):
        options.update(_partitioning(spark, config, options, relation, where))
        frame = spark.read.format("jdbc").options(**options).load()
    logger.info("reading jdbc table=%s url=%s partitions=%s", config.table or _QUERY_ALIAS, config.url,
                options.get("numPartitions", 1))
    return frame


def _partitioning(spark, config: JdbcSourceConfig, options: dict[str, str], relation: str, where: str) -> dict:
    """Spark's partitionColumn/lowerBound/upperBound/numPartitions options; {} for one partition."""
    if config.partition_column is None:
        return {}
    lower, upper = config.lower_bound, config.upper_bound
    if lower is None:
        lower, upper = _fetch_bounds(spark, config, options, relation, where)
        if lower is None:
            logger.info("jdbc partition_column=%s holds no value: one partition", config.partition_column)
            return {}
    partitions = config.num_partitions or spark.sparkContext.defaultParallelism
    return {"partitionColumn": config.partition_column, "lowerBound": str(lower), "upperBound": str(upper),
            "numPartitions": str(partitions)}


def _fetch_bounds(spark, config: JdbcSourceConfig, options: dict[str, str], relation: str,
                  where: str) -> tuple[int | None, int | None]:
    """min and max of the partition column (floor and ceiling), None for an empty table; one query."""
    column = quote_identifier(spark, config.url, config.partition_column)
    query = f"SELECT min({column}) AS lo, max({column}) AS hi FROM {relation}"
    bounds_options = {key: value for key, value in options.items() if key != "dbtable"}
    frame = spark.read.format("jdbc").options(**bounds_options).option("query", query).load()
    kind = type(frame.schema["lo"].dataType).__name__
    if kind not in _NUMERIC_TYPES:
        raise DataError(f"{where}.partition_column: {config.partition_column} must be a numeric column to split the "
                        f"read by; it is {frame.schema['lo'].dataType.simpleString()}. Name an integer column, or "
                        "remove partition_column to read in one partition.")
    row = frame.first()
    if row is None or row["lo"] is None:
        return None, None
    return math.floor(row["lo"]), math.ceil(row["hi"])
