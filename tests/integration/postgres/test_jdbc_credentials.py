"""Credentials against the real PostgreSQL: a wrong password is a clear error, and the password is
in no error, log line, Spark conf or query plan."""

from __future__ import annotations

import logging

import pytest

from h3spark.config import JdbcSinkConfig, JdbcSourceConfig
from h3spark.errors import StorageError

WRONG = "Wr0ng-Pa55word-7713"
# h3spark's loggers at debug. (py4j's own debug log is a wire trace of every call into the JVM, the
# password included; the CLI keeps it at WARNING at every verbosity, and so do these tests.)
H3SPARK_DEBUG = {"level": logging.DEBUG, "logger": "h3spark"}


@pytest.fixture
def wrong_password(postgres, monkeypatch) -> dict:
    monkeypatch.setenv("H3SPARK_TEST_DB_PASSWORD", WRONG)
    return {**postgres.config(), "password_file": None, "password_env": "H3SPARK_TEST_DB_PASSWORD"}


def test_a_wrong_password_on_read_is_a_clear_error_without_it(jdbc_spark, wrong_password, table, caplog, capfd):
    from h3spark.ingest import read_jdbc

    with caplog.at_level(**H3SPARK_DEBUG):
        with pytest.raises(StorageError) as error:
            read_jdbc(jdbc_spark, JdbcSourceConfig(**wrong_password, table=table, partition_column="id"))
    message = str(error.value)
    assert 'password authentication failed for user "h3spark"' in message
    assert "password_env or password_file" in message
    captured = capfd.readouterr()
    assert WRONG not in message + caplog.text + captured.out + captured.err


def test_a_wrong_password_on_write_fails_before_anything_is_written(jdbc_spark, postgres, wrong_password, table,
                                                                    caplog, capfd):
    from h3spark.storage import write_jdbc

    with caplog.at_level(**H3SPARK_DEBUG):
        with pytest.raises(StorageError, match='password authentication failed for user "h3spark"') as error:
            write_jdbc(jdbc_spark.range(5), JdbcSinkConfig(**wrong_password, table=table))
    captured = capfd.readouterr()
    assert WRONG not in str(error.value) + caplog.text + captured.out + captured.err
    assert postgres.tables_like(f"{table}%") == []


def test_the_password_is_in_no_spark_conf_or_query_plan(jdbc_spark, postgres, table):
    from h3spark.ingest import read_jdbc
    from h3spark.storage import write_jdbc

    write_jdbc(jdbc_spark.range(20), JdbcSinkConfig(**postgres.config(table=table)))
    assert read_jdbc(jdbc_spark, JdbcSourceConfig(**postgres.config(table=table, partition_column="id"))).count() == 20

    password = postgres.password_file.read_text().strip()
    executions = jdbc_spark._jsparkSession.sharedState().statusStore().executionsList()
    shown = [executions.apply(i) for i in range(executions.size())]
    texts = [e.description() + e.details() + e.physicalPlanDescription() for e in shown]
    assert any("jdbc" in text.lower() for text in texts)  # the plans of this write and read are among them
    assert not [text for text in texts if password in text]
    assert not [key for key, value in jdbc_spark.sparkContext.getConf().getAll() if password in value]
