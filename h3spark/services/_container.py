"""The same services as ``h3spark services up``, one role per container (docker/entrypoint.py).

Configs come from the renderers that ``services up`` uses, with the container's own host name
advertised instead of 127.0.0.1 and every daemon bound to 0.0.0.0: a container's network is
its own, and docker-compose publishes only the ports it lists.

    >>> prepare_role("kafka", Path("/data"), Path("/etc/h3spark"), ServicesConfig.from_env())
    RoleCommands(setup=[...format...], main=[...kafka.Kafka...])
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from h3spark.errors import UsageError
from h3spark.services._base import java_cmd
from h3spark.services._config import ServicesConfig
from h3spark.services._hdfs import DATANODE_MAIN, LOG4J_PROPERTIES, NAMENODE_MAIN, core_site, hdfs_site, render_site_xml
from h3spark.services._hdfs import webapps_root
from h3spark.services._java import find_java
from h3spark.services._kafka import LOG4J2_PROPERTIES, format_arguments, render_server_properties
from h3spark.services._maven import ensure_jars
from h3spark.services._spark import MASTER_MAIN, WORKER_MAIN, spark_home

CONTAINER_ROLES = ("kafka", "namenode", "datanode", "spark-master", "spark-worker")


@dataclass
class RoleCommands:
    """``setup`` runs once when the role's state is new (formatting); ``main`` is the daemon."""

    main: list[str]
    setup: list[str] = field(default_factory=list)


def prepare_role(role: str, data: Path, conf_root: Path, config: ServicesConfig) -> RoleCommands:
    """Write the role's config files under ``conf_root`` and return the commands that run it."""
    builders = {"kafka": _kafka, "namenode": _namenode, "datanode": _datanode,
                "spark-master": _spark_master, "spark-worker": _spark_worker}
    if role not in builders:
        raise UsageError(f"unknown service role {role!r}; choose one of {', '.join(CONTAINER_ROLES)}")
    return builders[role](data, conf_root, config)


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def _kafka(data: Path, conf_root: Path, config: ServicesConfig) -> RoleCommands:
    host = os.environ.get("KAFKA_HOSTNAME", socket.gethostname())
    props = _properties(render_server_properties(config, data / "kafka"))
    props.update({
        "listeners": f"INTERNAL://0.0.0.0:29092,EXTERNAL://0.0.0.0:{config.kafka_port},"
                     f"CONTROLLER://0.0.0.0:{config.kafka_controller_port}",
        "advertised.listeners": f"INTERNAL://{host}:29092,EXTERNAL://localhost:{config.kafka_port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "controller.quorum.voters": f"1@{host}:{config.kafka_controller_port}",
    })
    conf = conf_root / "kafka"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (conf / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    base = java_cmd(find_java(), config.heap, f"{ensure_jars('kafka')}/*", "{main}",
                    {"log4j2.configurationFile": str(conf / "log4j2.properties")})[:-1]
    setup = [] if (data / "kafka" / "meta.properties").is_file() else [
        *base, "kafka.tools.StorageTool", *format_arguments(conf / "server.properties")]
    return RoleCommands(main=[*base, "kafka.Kafka", str(conf / "server.properties")], setup=setup)


def _hdfs_conf(data: Path, conf_root: Path, config: ServicesConfig) -> Path:
    namenode = os.environ.get("NAMENODE_HOST", "namenode")
    state = data / "hdfs"
    core = core_site(config, state) | {"fs.defaultFS": f"hdfs://{namenode}:{config.hdfs_port}"}
    site = hdfs_site(config, state)
    site.update({
        "dfs.namenode.rpc-address": f"{namenode}:{config.hdfs_port}",
        "dfs.namenode.rpc-bind-host": "0.0.0.0",
        "dfs.namenode.http-address": f"{namenode}:{config.hdfs_http_port}",
        "dfs.namenode.http-bind-host": "0.0.0.0",
        "dfs.datanode.address": f"0.0.0.0:{config.hdfs_datanode_port}",
        "dfs.datanode.http.address": f"0.0.0.0:{config.hdfs_datanode_http_port}",
        "dfs.datanode.ipc.address": f"0.0.0.0:{config.hdfs_datanode_ipc_port}",
        "dfs.datanode.hostname": os.environ.get("DATANODE_HOSTNAME", socket.gethostname()),
    })
    conf = conf_root / "hadoop"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "core-site.xml").write_text(render_site_xml(core))
    (conf / "hdfs-site.xml").write_text(render_site_xml(site))
    (conf / "log4j.properties").write_text(LOG4J_PROPERTIES)
    return conf


def _hdfs_cmd(main: str, data: Path, conf_root: Path, config: ServicesConfig) -> list[str]:
    conf, jars = _hdfs_conf(data, conf_root, config), ensure_jars("hdfs")
    return java_cmd(find_java(), config.heap, f"{conf}:{webapps_root(jars)}:{jars}/*", main,
                    {"hadoop.log.dir": str(data / "logs"), "hadoop.root.logger": "INFO,console"})


def _namenode(data: Path, conf_root: Path, config: ServicesConfig) -> RoleCommands:
    cmd = _hdfs_cmd(NAMENODE_MAIN, data, conf_root, config)
    formatted = (data / "hdfs" / "name" / "current" / "VERSION").is_file()
    return RoleCommands(main=cmd, setup=[] if formatted else [*cmd, "-format", "-nonInteractive", "-clusterid", "h3spark"])


def _datanode(data: Path, conf_root: Path, config: ServicesConfig) -> RoleCommands:
    return RoleCommands(main=_hdfs_cmd(DATANODE_MAIN, data, conf_root, config))


def _spark_master(data: Path, conf_root: Path, config: ServicesConfig) -> RoleCommands:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return RoleCommands(main=[str(spark_home() / "bin" / "spark-class"), MASTER_MAIN, "--host", socket.gethostname(),
                              "--port", str(config.spark_port), "--webui-port", str(config.spark_webui_port)])


def _spark_worker(data: Path, conf_root: Path, config: ServicesConfig) -> RoleCommands:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    master = os.environ.get("SPARK_MASTER", f"spark://spark-master:{config.spark_port}")
    return RoleCommands(main=[str(spark_home() / "bin" / "spark-class"), WORKER_MAIN, "--host", socket.gethostname(),
                              "--cores", str(config.spark_worker_cores), "--memory", config.spark_worker_memory,
                              "--webui-port", str(config.spark_worker_webui_port),
                              "--work-dir", str(data / "spark-work"), master])
