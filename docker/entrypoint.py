"""Container entry point: run one h3spark service role in the foreground.

    entrypoint.py kafka | namenode | datanode | spark-master | spark-worker | jupyter

Configs come from the same renderers as `h3spark services up` (h3spark/services/), with the
container's own host name advertised instead of 127.0.0.1 and every daemon bound to 0.0.0.0.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from h3spark.services import ServicesConfig
from h3spark.services._base import java_cmd
from h3spark.services._hdfs import DATANODE_MAIN, LOG4J_PROPERTIES, NAMENODE_MAIN, core_site, hdfs_site
from h3spark.services._hdfs import render_site_xml, webapps_root
from h3spark.services._java import find_java
from h3spark.services._kafka import LOG4J2_PROPERTIES, new_cluster_id, render_server_properties
from h3spark.services._maven import ensure_jars
from h3spark.services._spark import MASTER_MAIN, WORKER_MAIN, spark_home

DATA = Path(os.environ.get("H3SPARK_DATA", "/data"))
CONFIG = ServicesConfig.from_env()


def _exec(cmd: list[str]) -> None:
    print("exec:", " ".join(cmd), flush=True)
    os.execvp(cmd[0], cmd)


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def kafka() -> None:
    """KRaft broker+controller; containers use kafka:29092, the host uses localhost:9092."""
    host = os.environ.get("KAFKA_HOSTNAME", socket.gethostname())
    props = _properties(render_server_properties(CONFIG, DATA / "kafka"))
    props.update({
        "listeners": f"INTERNAL://0.0.0.0:29092,EXTERNAL://0.0.0.0:{CONFIG.kafka_port},"
                     f"CONTROLLER://0.0.0.0:{CONFIG.kafka_controller_port}",
        "advertised.listeners": f"INTERNAL://{host}:29092,EXTERNAL://localhost:{CONFIG.kafka_port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "controller.quorum.voters": f"1@{host}:{CONFIG.kafka_controller_port}",
    })
    conf = Path("/etc/h3spark/kafka")
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (conf / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    jars = ensure_jars("kafka")
    base = java_cmd(find_java(), CONFIG.heap, f"{jars}/*", "{main}",
                    {"log4j2.configurationFile": str(conf / "log4j2.properties")})
    if not (DATA / "kafka" / "meta.properties").is_file():
        fmt = [*base[:-1], "kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c",
               str(conf / "server.properties"), "--ignore-formatted"]
        if os.spawnvp(os.P_WAIT, fmt[0], fmt) != 0:
            sys.exit("kafka: formatting the storage failed")
    _exec([*base[:-1], "kafka.Kafka", str(conf / "server.properties")])


def _hdfs_conf() -> Path:
    namenode = os.environ.get("NAMENODE_HOST", "namenode")
    state = DATA / "hdfs"
    core = core_site(CONFIG, state) | {"fs.defaultFS": f"hdfs://{namenode}:{CONFIG.hdfs_port}"}
    site = hdfs_site(CONFIG, state)
    site.update({
        "dfs.namenode.rpc-address": f"{namenode}:{CONFIG.hdfs_port}",
        "dfs.namenode.rpc-bind-host": "0.0.0.0",
        "dfs.namenode.http-address": f"{namenode}:{CONFIG.hdfs_http_port}",
        "dfs.namenode.http-bind-host": "0.0.0.0",
        "dfs.datanode.address": f"0.0.0.0:{CONFIG.hdfs_datanode_port}",
        "dfs.datanode.http.address": f"0.0.0.0:{CONFIG.hdfs_datanode_http_port}",
        "dfs.datanode.ipc.address": f"0.0.0.0:{CONFIG.hdfs_datanode_ipc_port}",
        "dfs.datanode.hostname": os.environ.get("DATANODE_HOSTNAME", socket.gethostname()),
    })
    conf = Path("/etc/h3spark/hadoop")
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "core-site.xml").write_text(render_site_xml(core))
    (conf / "hdfs-site.xml").write_text(render_site_xml(site))
    (conf / "log4j.properties").write_text(LOG4J_PROPERTIES)
    return conf


def _hdfs_cmd(main: str) -> list[str]:
    conf, jars = _hdfs_conf(), ensure_jars("hdfs")
    return java_cmd(find_java(), CONFIG.heap, f"{conf}:{webapps_root(jars)}:{jars}/*", main,
                    {"hadoop.log.dir": str(DATA / "logs"), "hadoop.root.logger": "INFO,console"})


def namenode() -> None:
    cmd = _hdfs_cmd(NAMENODE_MAIN)
    if not (DATA / "hdfs" / "name" / "current" / "VERSION").is_file():
        fmt = [*cmd, "-format", "-nonInteractive", "-clusterid", "h3spark"]
        if os.spawnvp(os.P_WAIT, fmt[0], fmt) != 0:
            sys.exit("namenode: formatting failed")
    _exec(cmd)


def datanode() -> None:
    _exec(_hdfs_cmd(DATANODE_MAIN))


def spark_master() -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    _exec([str(spark_home() / "bin" / "spark-class"), MASTER_MAIN, "--host", socket.gethostname(),
           "--port", str(CONFIG.spark_port), "--webui-port", str(CONFIG.spark_webui_port)])


def spark_worker() -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    master = os.environ.get("SPARK_MASTER", f"spark://spark-master:{CONFIG.spark_port}")
    _exec([str(spark_home() / "bin" / "spark-class"), WORKER_MAIN, "--host", socket.gethostname(),
           "--cores", str(CONFIG.spark_worker_cores), "--memory", CONFIG.spark_worker_memory,
           "--webui-port", str(CONFIG.spark_worker_webui_port), "--work-dir", str(DATA / "spark-work"), master])


def jupyter() -> None:
    _exec(["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root",
           "--ServerApp.token=" + os.environ.get("JUPYTER_TOKEN", "h3spark"), "--notebook-dir=/opt/h3spark"])


ROLES = {"kafka": kafka, "namenode": namenode, "datanode": datanode, "spark-master": spark_master,
         "spark-worker": spark_worker, "jupyter": jupyter}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ROLES:
        if len(sys.argv) > 1:
            _exec(sys.argv[1:])  # any other command, e.g. `h3spark run ...` or `bash`
        sys.exit(f"usage: entrypoint.py {{{'|'.join(ROLES)}}} | COMMAND...")
    ROLES[sys.argv[1]]()
