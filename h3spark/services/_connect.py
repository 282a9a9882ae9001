"""A Spark Connect server from the pyspark installation: a resident Spark driver that clients reach over gRPC.

A launch through it (``spark.remote: sc://127.0.0.1:15002``, or ``h3spark launch --remote``) starts no
JVM of its own: the driver, its Python workers and their imports are already up (see
``h3spark.spark._connect``).
"""

from __future__ import annotations

from pathlib import Path

from h3spark.services._base import Daemon, Service
from h3spark.services._config import ServicesConfig
from h3spark.services._endpoint import Endpoint
from h3spark.services._process import HOST, accepts_connections
from h3spark.services._spark import spark_env, spark_home

SERVER_MAIN = "org.apache.spark.sql.connect.service.SparkConnectServer"

# Settings of the resident driver. Its sessions stay a week without use (Spark's default is an hour):
# the launch session h3spark pins keeps its warm Python workers between jobs. An operation whose client
# went away (a killed CLI) is interrupted once its response stream ended (every 15 s a client
# reattaches; Spark's default is 2 min) and 30 s passed without a reattach (5 min by default), so a
# launch's tasks and roles outlive their driver by under a minute (measured: 2.6 min with the defaults).
# A launch that needs more task slots than the server has fails at once instead of after 40 checks
# 15 s apart.
SERVER_CONF = {
    "spark.driver.host": HOST,
    "spark.driver.bindAddress": HOST,
    "spark.ui.enabled": "false",
    "spark.connect.session.manager.defaultSessionTimeout": "7d",
    "spark.connect.execute.reattachable.senderMaxStreamDuration": "15s",
    "spark.connect.execute.manager.detachedTimeout": "30s",
    "spark.connect.execute.manager.maintenanceInterval": "5s",
    "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures": "1",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
}


def server_cmd(home: Path, config: ServicesConfig) -> list[str]:
    conf = {**SERVER_CONF, "spark.connect.grpc.binding.address": HOST,
            "spark.connect.grpc.binding.port": str(config.connect_port)}
    options = [item for key, value in conf.items() for item in ("--conf", f"{key}={value}")]
    return [str(home / "bin" / "spark-submit"), "--class", SERVER_MAIN, "--name", "h3spark connect",
            "--master", f"local[{config.connect_cores}]", "--driver-memory", config.connect_memory, *options]


class ConnectService(Service):
    name = "connect"
    port_flags = "--connect-port or H3SPARK_CONNECT_PORT"

    def ports(self, config: ServicesConfig) -> dict[str, int]:
        return {"spark connect": config.connect_port}

    def endpoint(self, config: ServicesConfig) -> Endpoint:
        return Endpoint(service="connect", uri=f"sc://{HOST}:{config.connect_port}")

    def prepare(self, config: ServicesConfig, java: str, state: Path) -> None:
        for sub in ("logs", "conf"):
            (state / sub).mkdir(parents=True, exist_ok=True)

    def daemons(self, config: ServicesConfig, java: str, state: Path) -> list[Daemon]:
        return [Daemon("server", server_cmd(spark_home(), config), spark_env(java, state))]

    def is_ready(self, endpoint: Endpoint) -> bool:
        """The gRPC port accepts connections (it opens once the driver's SparkContext is up)."""
        return accepts_connections(int(endpoint.uri.rsplit(":", 1)[1]), timeout_s=2.0)
