"""Session fixtures for the real local services started by ``h3spark services up``.

Outside CI a test whose service is not running is skipped, with the command that starts it;
under CI (``CI=true``) it fails instead, so that a green run means the services were exercised.
"""

from __future__ import annotations

import pytest

from tests.conftest import require


def _running_endpoint(name: str):
    from h3spark import services

    endpoint = services.status().get(name)
    if endpoint is not None:
        return endpoint
    reason = (f"the local {name} service is not running; start it with: h3spark services up {name} "
              f"(stop with: h3spark services down)")
    require(False, reason)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address of the local Kafka broker, e.g. ``127.0.0.1:9092``."""
    return _running_endpoint("kafka").bootstrap_servers


@pytest.fixture(scope="session")
def hdfs_service():
    """The local HDFS: ``.uri`` (``hdfs://127.0.0.1:8020``) and ``.webhdfs_url`` (``http://127.0.0.1:9870``)."""
    return _running_endpoint("hdfs")


@pytest.fixture(scope="session")
def postgres_service():
    """The local PostgreSQL: ``.uri`` (``jdbc:postgresql://127.0.0.1:5433/postgres``); user h3spark,
    password in ``h3spark.services.postgres_password_file()``."""
    return _running_endpoint("postgres")


@pytest.fixture(scope="session")
def spark_cluster() -> str:
    """Master URL of the local Spark standalone cluster, e.g. ``spark://127.0.0.1:7077``."""
    return _running_endpoint("spark").master_url


@pytest.fixture(scope="session")
def spark_connect() -> str:
    """URL of the local Spark Connect server, e.g. ``sc://127.0.0.1:15002``."""
    return _running_endpoint("connect").uri
