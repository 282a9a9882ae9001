"""HDFS: a real NameNode and DataNode (Hadoop jars from Maven) with WebHDFS on loopback."""

from __future__ import annotations

import getpass
import json
import logging
import os
import urllib.request
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from h3spark.errors import ServiceError
from h3spark.services._base import Daemon, Service, java_cmd
from h3spark.services._config import ServicesConfig
from h3spark.services._endpoint import Endpoint
from h3spark.services._maven import ensure_jars
from h3spark.services._paths import cache_dir
from h3spark.services._process import HOST, quiet_logger, run_logged

logger = logging.getLogger(__name__)

NAMENODE_MAIN = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE_MAIN = "org.apache.hadoop.hdfs.server.datanode.DataNode"

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.out
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
"""


def render_site_xml(properties: dict[str, str]) -> str:
    """A Hadoop ``*-site.xml`` with the given properties."""
    body = "".join(f"  <property><name>{escape(k)}</name><value>{escape(str(v))}</value></property>\n"
                   for k, v in properties.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


def core_site(config: ServicesConfig, state: Path) -> dict[str, str]:
    return {
        "fs.defaultFS": f"hdfs://{HOST}:{config.hdfs_port}",
        "hadoop.security.authentication": "simple",
        "hadoop.tmp.dir": str(state / "tmp"),
        "hadoop.http.staticuser.user": getpass.getuser(),
    }


def hdfs_site(config: ServicesConfig, state: Path) -> dict[str, str]:
    return {
        "dfs.namenode.name.dir": (state / "name").as_uri(),
        "dfs.datanode.data.dir": (state / "data").as_uri(),
        "dfs.namenode.rpc-address": f"{HOST}:{config.hdfs_port}",
        "dfs.namenode.http-address": f"{HOST}:{config.hdfs_http_port}",
        "dfs.datanode.address": f"{HOST}:{config.hdfs_datanode_port}",
        "dfs.datanode.http.address": f"{HOST}:{config.hdfs_datanode_http_port}",
        "dfs.datanode.ipc.address": f"{HOST}:{config.hdfs_datanode_ipc_port}",
        "dfs.datanode.hostname": HOST,
        "dfs.namenode.datanode.registration.ip-hostname-check": "false",
        "dfs.replication": "1",
        "dfs.webhdfs.enabled": "true",
        "dfs.permissions.enabled": "false",
        "dfs.namenode.safemode.extension": "0",
        "dfs.heartbeat.interval": "1",
        "dfs.namenode.resource.du.reserved": "0",
        "dfs.datanode.du.reserved": "0",
    }


def webapps_root(jars: Path) -> Path:
    """A directory holding webapps/ (hdfs, datanode, static) unpacked from the hadoop-hdfs tests jar.

    On the classpath ahead of the jars, it spares Jetty unpacking them from the jar at every start.
    """
    tests_jars = sorted(jars.glob("hadoop-hdfs-*-tests.jar"))
    if not tests_jars:
        raise ServiceError(f"hdfs: no hadoop-hdfs-*-tests.jar in {jars}; the NameNode web server (and WebHDFS) "
                           "needs its webapps/. Add it (see h3spark/services/poms/hdfs.xml).")
    root = cache_dir() / "jars" / f"{tests_jars[0].stem}-webapps"
    if (root / "webapps" / "hdfs").is_dir():
        return root
    partial = root.with_name(f"{root.name}.partial-{os.getpid()}")
    with zipfile.ZipFile(tests_jars[0]) as archive:
        archive.extractall(partial, [n for n in archive.namelist() if n.startswith("webapps/")])
    partial.rename(root)
    return root


class HdfsService(Service):
    name = "hdfs"
    port_flags = "--hdfs-port/--hdfs-http-port or H3SPARK_HDFS_PORT, H3SPARK_HDFS_HTTP_PORT, H3SPARK_HDFS_DATANODE_*"

    def ports(self, config: ServicesConfig) -> dict[str, int]:
        return {"hdfs namenode rpc": config.hdfs_port, "hdfs namenode http": config.hdfs_http_port,
                "hdfs datanode": config.hdfs_datanode_port, "hdfs datanode http": config.hdfs_datanode_http_port,
                "hdfs datanode ipc": config.hdfs_datanode_ipc_port}

    def endpoint(self, config: ServicesConfig) -> Endpoint:
        return Endpoint(service="hdfs", uri=f"hdfs://{HOST}:{config.hdfs_port}",
                        http_url=f"http://{HOST}:{config.hdfs_http_port}")

    def prepare(self, config: ServicesConfig, java: str, state: Path) -> None:
        self._jars = ensure_jars("hdfs")
        conf = state / "conf"
        for sub in (conf, state / "logs", state / "data", state / "tmp"):
            sub.mkdir(parents=True, exist_ok=True)
        (conf / "core-site.xml").write_text(render_site_xml(core_site(config, state)))
        (conf / "hdfs-site.xml").write_text(render_site_xml(hdfs_site(config, state)))
        (conf / "log4j.properties").write_text(LOG4J_PROPERTIES)
        if not (state / "name" / "current" / "VERSION").is_file():
            self._format(config, java, state)

    def _command(self, config: ServicesConfig, java: str, state: Path, main: str) -> list[str]:
        props = {"hadoop.log.dir": str(state / "logs"), "hadoop.home.dir": str(state),
                 "hadoop.id.str": getpass.getuser(), "hadoop.root.logger": "INFO,console",
                 "java.io.tmpdir": str(state / "tmp")}  # Jetty's scratch dirs stay out of /tmp
        classpath = f"{state / 'conf'}:{webapps_root(self._jars)}:{self._jars}/*"
        return java_cmd(java, config.heap, classpath, main, props)

    def _format(self, config: ServicesConfig, java: str, state: Path) -> None:
        cmd = [*self._command(config, java, state, NAMENODE_MAIN), "-format", "-nonInteractive", "-force",
               "-clusterid", "h3spark"]
        (state / "format.log").unlink(missing_ok=True)
        run_logged(f"hdfs: formatting the NameNode in {state / 'name'}", cmd, state / "format.log", env=self._env(state))

    def _env(self, state: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HADOOP_CONF_DIR=str(state / "conf"), HADOOP_LOG_DIR=str(state / "logs"))
        return env

    def daemons(self, config: ServicesConfig, java: str, state: Path) -> list[Daemon]:
        env = self._env(state)
        return [Daemon("namenode", self._command(config, java, state, NAMENODE_MAIN), env),
                Daemon("datanode", self._command(config, java, state, DATANODE_MAIN), env)]

    def is_ready(self, endpoint: Endpoint) -> bool:
        """The NameNode has left safe mode with a live DataNode, and a WebHDFS write+read round-trip works."""
        if not _namenode_serving(endpoint.http_url):
            return False
        with quiet_logger("hdfs"):
            return _webhdfs_round_trip(endpoint.http_url)


def _namenode_serving(http_url: str) -> bool:
    query = f"{http_url}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
    with urllib.request.urlopen(query, timeout=5) as response:
        beans = json.load(response).get("beans", [])
    if not beans:
        return False
    info = beans[0]
    live = json.loads(info.get("LiveNodes") or "{}")
    return not info.get("Safemode") and len(live) >= 1


def _webhdfs_round_trip(http_url: str) -> bool:
    from hdfs import InsecureClient

    client = InsecureClient(http_url, user=getpass.getuser(), timeout=10)
    path = f"/tmp/.h3spark-ready-{os.getpid()}"
    payload = b"h3spark ready probe"
    client.write(path, data=payload, overwrite=True)
    with client.read(path) as reader:
        ok = reader.read() == payload
    client.delete(path)
    return ok
