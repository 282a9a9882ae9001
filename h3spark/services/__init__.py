"""Local Kafka (KRaft), HDFS (NameNode + DataNode), Spark standalone and PostgreSQL services on loopback.

For development and integration tests::

    from h3spark import services
    services.up(["kafka", "hdfs"])            # or: h3spark services up kafka hdfs
    services.status()["hdfs"].webhdfs_url     # 'http://127.0.0.1:9870'
    services.down()
"""

from h3spark.services._config import ServicesConfig
from h3spark.services._container import CONTAINER_ROLES, RoleCommands, prepare_role
from h3spark.services._endpoint import POSTGRES_USER, Endpoint
from h3spark.services._manager import down, reset, resolve_names, status, up
from h3spark.services._maven import (ensure_jars, ensure_spark_kafka_package, jdbc_driver_jars, spark_kafka_jars,
                                     spark_kafka_package)
from h3spark.services._paths import SERVICE_NAMES, cache_dir, postgres_password_file, state_dir

__all__ = [
    "CONTAINER_ROLES",
    "RoleCommands",
    "prepare_role",
    "ensure_jars",
    "SERVICE_NAMES",
    "Endpoint",
    "ServicesConfig",
    "cache_dir",
    "down",
    "ensure_spark_kafka_package",
    "jdbc_driver_jars",
    "POSTGRES_USER",
    "postgres_password_file",
    "reset",
    "resolve_names",
    "spark_kafka_jars",
    "spark_kafka_package",
    "state_dir",
    "status",
    "up",
]
