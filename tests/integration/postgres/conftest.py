"""The local PostgreSQL (h3spark services up postgres), psql to set tables up and look at them,
and the shared Spark session with PostgreSQL's JDBC driver added."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.postgres.pg import Postgres


@pytest.fixture(scope="session")
def postgres(postgres_service) -> Postgres:
    from h3spark.services import postgres_password_file

    port = int(postgres_service.uri.rsplit(":", 1)[1].split("/", 1)[0])
    return Postgres(url=postgres_service.uri, port=port, password_file=postgres_password_file())


@pytest.fixture
def jdbc_spark(spark):
    """The shared local Spark session, with PostgreSQL's JDBC driver (resolved by services up postgres) added."""
    from h3spark.services import jdbc_driver_jars

    added = str(spark.sparkContext._jsc.sc().listJars())
    for jar in jdbc_driver_jars():
        if jar.rsplit("/", 1)[1] not in added:
            spark.sql(f"ADD JAR '{jar}'")
    return spark


@pytest.fixture
def table(postgres):
    """A fresh table name; the table, and any staging table of it, are dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    for leftover in postgres.tables_like(f"{name}%"):
        postgres.query(f"DROP TABLE IF EXISTS {leftover}")
