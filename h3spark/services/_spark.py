"""A Spark standalone cluster from the pyspark installation: one master and small workers."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

from h3spark.errors import ServiceError
from h3spark.services._base import DAEMON_JVM_FLAGS, Daemon, Service
from h3spark.services._config import ServicesConfig
from h3spark.services._endpoint import Endpoint
from h3spark.services._java import java_home_of
from h3spark.services._process import HOST

MASTER_MAIN = "org.apache.spark.deploy.master.Master"
WORKER_MAIN = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The pyspark package directory, which carries bin/spark-class and the jars."""
    import pyspark

    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").is_file():
        raise ServiceError(f"pyspark at {home} has no bin/spark-class; reinstall pyspark (pip install pyspark).")
    return home


def master_cmd(home: Path, config: ServicesConfig) -> list[str]:
    return [str(home / "bin" / "spark-class"), MASTER_MAIN, "--host", HOST, "--port", str(config.spark_port),
            "--webui-port", str(config.spark_webui_port)]


def worker_cmd(home: Path, config: ServicesConfig, index: int, work_dir: Path) -> list[str]:
    return [str(home / "bin" / "spark-class"), WORKER_MAIN, "--host", HOST,
            "--cores", str(config.spark_worker_cores), "--memory", config.spark_worker_memory,
            "--webui-port", str(config.spark_worker_webui_port + index), "--work-dir", str(work_dir),
            f"spark://{HOST}:{config.spark_port}"]


def spark_env(java: str, state: Path) -> dict[str, str]:
    """Environment of the daemons: our Java, loopback only, and the venv's python for Python tasks."""
    env = dict(os.environ)
    env.update(SPARK_HOME=str(spark_home()), JAVA_HOME=java_home_of(java), SPARK_LOCAL_IP=HOST,
               SPARK_LOCAL_HOSTNAME=HOST, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               SPARK_DAEMON_MEMORY="512m", SPARK_DAEMON_JAVA_OPTS=" ".join(DAEMON_JVM_FLAGS),
               SPARK_LOG_DIR=str(state / "logs"), SPARK_CONF_DIR=str(state / "conf"))
    return env


class SparkService(Service):
    name = "spark"
    port_flags = "--spark-port/--spark-webui-port or H3SPARK_SPARK_PORT, H3SPARK_SPARK_WEBUI_PORT"

    def ports(self, config: ServicesConfig) -> dict[str, int]:
        ports = {"spark master": config.spark_port, "spark master web UI": config.spark_webui_port}
        for index in range(config.spark_workers):
            ports[f"spark worker {index + 1} web UI"] = config.spark_worker_webui_port + index
        return ports

    def endpoint(self, config: ServicesConfig) -> Endpoint:
        return Endpoint(service="spark", uri=f"spark://{HOST}:{config.spark_port}",
                        http_url=f"http://{HOST}:{config.spark_webui_port}")

    def prepare(self, config: ServicesConfig, java: str, state: Path) -> None:
        for sub in ("logs", "conf", "work"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        self._expected_workers = config.spark_workers

    def daemons(self, config: ServicesConfig, java: str, state: Path) -> list[Daemon]:
        home, env = spark_home(), spark_env(java, state)
        daemons = [Daemon("master", master_cmd(home, config), env)]
        for index in range(config.spark_workers):
            work_dir = state / "work" / f"worker-{index + 1}"
            work_dir.mkdir(parents=True, exist_ok=True)
            daemons.append(Daemon(f"worker-{index + 1}", worker_cmd(home, config, index, work_dir), env))
        return daemons

    def is_ready(self, endpoint: Endpoint) -> bool:
        """The master is ALIVE and reports every worker alive."""
        state = master_state(endpoint.http_url)
        return state.get("status") == "ALIVE" and state.get("aliveworkers", 0) >= self._expected_workers


def master_state(webui_url: str) -> dict:
    with urllib.request.urlopen(f"{webui_url}/json", timeout=5) as response:
        return json.load(response)
