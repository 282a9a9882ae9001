"""Writing a DataFrame into a database table over JDBC: batched, and all rows or none.

    >>> write_jdbc(predictions, JdbcSinkConfig(url="jdbc:postgresql://127.0.0.1:5433/postgres", user="h3spark",
    ...            password_file="~/.cache/h3spark/services/postgres/password", table="predictions",
    ...            mode="overwrite"))

Spark's JDBC writer commits each partition on its own connection, so a job that fails half-way
leaves the partitions that finished in the table. ``write_jdbc`` lets Spark write (in batches
of ``batch_size`` rows) into a staging table next to the target, ``TABLE_h3s_<12 hex>``, and
then, in ONE transaction on the driver, moves the rows into the target and drops the staging
table:

* append: ``INSERT INTO table (columns) SELECT columns FROM staging`` (a new table: a rename);
* overwrite: ``DROP TABLE table`` and ``ALTER TABLE staging RENAME TO table`` (the table takes
  the frame's columns), or with ``truncate: true`` ``DELETE FROM table`` and the insert (the
  table keeps its definition, indexes and grants).

On a database whose DDL is transactional (PostgreSQL) readers see the old rows or the new,
never a part, and a failure before the commit leaves the table as it was: the staging table is
dropped. (Where DDL commits by itself, as in MySQL or Oracle, only append into an existing
table and truncate keep that promise.) A driver killed during the write may leave a staging
table behind (``*_h3s_*``), never a half-written target.
"""

from __future__ import annotations

import logging
import uuid

from h3spark.config import JdbcSinkConfig
from h3spark.storage._jdbc import connection, jdbc_errors, jdbc_options, quote_identifier, read_password, require_driver

logger = logging.getLogger(__name__)

STAGING_MARK = "_h3s_"
_MAX_IDENTIFIER = 63  # PostgreSQL's limit; longer names are cut silently


def staging_table(table: str, token: str | None = None) -> str:
    """The staging table of ``table``, in the same schema: ``[SCHEMA.]NAME_h3s_<12 hex>`` (at most 63 characters)."""
    schema, _, name = table.rpartition(".")
    suffix = STAGING_MARK + (token or uuid.uuid4().hex[:12])
    staged = (name[: _MAX_IDENTIFIER - len(suffix)] + suffix).lower()
    return f"{schema}.{staged}" if schema else staged


def publish_statements(sink: JdbcSinkConfig, staging: str, columns: list[str], table_exists: bool) -> list[str]:
    """The SQL of the one transaction that moves the staged rows into ``sink.table`` (``columns`` quoted)."""
    rename = [f"ALTER TABLE {staging} RENAME TO {sink.table.rpartition('.')[2]}"]
    if not table_exists:
        return rename
    listed = ", ".join(columns)
    insert = [f"INSERT INTO {sink.table} ({listed}) SELECT {listed} FROM {staging}", f"DROP TABLE {staging}"]
    if sink.mode == "append":
        return insert
    if sink.truncate:
        return [f"DELETE FROM {sink.table}", *insert]
    return [f"DROP TABLE {sink.table}", *rename]


def write_jdbc(frame, sink: JdbcSinkConfig, where: str = "jdbc") -> None:
    """Write ``frame`` into ``sink.table`` (append or overwrite), all rows or none (see the module docstring).

    ``where`` names the config section in errors (e.g. ``predict.output.jdbc``). Raises StorageError
    when the database refuses (credentials, table, types), DependencyError without the driver."""
    password = read_password(sink, where)
    options = jdbc_options(sink, where, password)
    spark = frame.sparkSession
    require_driver(spark, options["driver"])
    staging = staging_table(sink.table)
    columns = [quote_identifier(spark, sink.url, name) for name in frame.columns]
    with connection(spark, options, where) as session:  # first: bad credentials fail before any work
        exists = _table_exists(session, sink.table)
        try:
            _write_staging(frame, sink, options, staging, password)
            statements = publish_statements(sink, staging, columns, exists)
            with jdbc_errors(f"moving the rows of {staging} into {sink.table}", password):
                _run_in_one_transaction(session, statements)
        except BaseException:
            _drop_quietly(session, staging)
            raise
    logger.info("wrote jdbc table=%s mode=%s url=%s", sink.table, sink.mode, sink.url)


def _write_staging(frame, sink: JdbcSinkConfig, options: dict[str, str], staging: str, password: str | None) -> None:
    writer = (frame.write.format("jdbc").options(**options).option("dbtable", staging)
              .option("batchsize", str(sink.batch_size)).mode("errorifexists"))
    if sink.num_partitions is not None:
        writer = writer.option("numPartitions", str(sink.num_partitions))
    logger.info("writing jdbc staging=%s table=%s batch_size=%d", staging, sink.table, sink.batch_size)
    with jdbc_errors(f"writing {sink.table} (into its staging table {staging})", password):
        writer.save()


def _table_exists(session, table: str) -> bool:
    """Whether ``table`` exists: Spark's own probe (a query that returns no row), outside any transaction."""
    from py4j.protocol import Py4JJavaError

    statement = session.createStatement()
    try:
        statement.executeQuery(f"SELECT 1 FROM {table} WHERE 1=0").close()
        return True
    except Py4JJavaError:
        return False
    finally:
        statement.close()


def _run_in_one_transaction(session, statements: list[str]) -> None:
    session.setAutoCommit(False)
    statement = session.createStatement()
    try:
        for sql in statements:
            statement.executeUpdate(sql)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        statement.close()
        session.setAutoCommit(True)


def _drop_quietly(session, staging: str) -> None:
    """Drop the staging table after a failure; a failure to drop is logged (the first error is the one raised)."""
    from py4j.protocol import Py4JJavaError

    statement = session.createStatement()
    try:
        statement.executeUpdate(f"DROP TABLE IF EXISTS {staging}")
    except Py4JJavaError as error:
        logger.warning("could not drop the staging table %s after a failed write (%s); drop it by hand",
                       staging, error.java_exception.getMessage())
    finally:
        statement.close()
