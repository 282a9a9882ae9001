from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from h3spark.errors import ServiceError
from h3spark.services import Endpoint, ServicesConfig
from h3spark.services._connect import server_cmd
from h3spark.services._hdfs import core_site, hdfs_site, render_site_xml
from h3spark.services._kafka import new_cluster_id, render_server_properties
from h3spark.services._spark import master_cmd, worker_cmd


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_kafka_properties_are_a_single_kraft_node_on_loopback():
    config = ServicesConfig(kafka_port=19092, kafka_controller_port=19093)
    props = _properties(render_server_properties(config, Path("/data/kafka")))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == "/data/kafka"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "share.coordinator.state.topic.replication.factor"):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_kafka_cluster_id_is_22_url_safe_characters():
    cluster_id = new_cluster_id()
    assert len(cluster_id) == 22 and "=" not in cluster_id and "+" not in cluster_id and "/" not in cluster_id


def _xml_properties(text: str) -> dict[str, str]:
    root = ET.fromstring(text)
    return {p.findtext("name"): p.findtext("value") for p in root.iter("property")}


def test_hdfs_site_has_webhdfs_replication_one_and_loopback_datanode(tmp_path):
    config = ServicesConfig(hdfs_port=18020, hdfs_http_port=19870)
    props = _xml_properties(render_site_xml(hdfs_site(config, tmp_path)))
    assert props["dfs.namenode.rpc-address"] == "127.0.0.1:18020"
    assert props["dfs.namenode.http-address"] == "127.0.0.1:19870"
    assert props["dfs.webhdfs.enabled"] == "true"
    assert props["dfs.replication"] == "1"
    assert props["dfs.datanode.hostname"] == "127.0.0.1"
    assert props["dfs.namenode.datanode.registration.ip-hostname-check"] == "false"
    assert props["dfs.permissions.enabled"] == "false"
    assert props["dfs.namenode.safemode.extension"] == "0"
    assert props["dfs.namenode.name.dir"] == (tmp_path / "name").as_uri()


def test_core_site_uses_simple_auth_and_the_namenode_uri(tmp_path):
    props = _xml_properties(render_site_xml(core_site(ServicesConfig(hdfs_port=18020), tmp_path)))
    assert props["fs.defaultFS"] == "hdfs://127.0.0.1:18020"
    assert props["hadoop.security.authentication"] == "simple"


def test_site_xml_escapes_values():
    props = _xml_properties(render_site_xml({"a": "x<y&z"}))
    assert props["a"] == "x<y&z"


def test_spark_commands_bind_loopback_with_small_workers(tmp_path):
    config = ServicesConfig(spark_port=17077, spark_webui_port=18080, spark_worker_cores=1, spark_worker_memory="2g")
    master = master_cmd(tmp_path, config)
    worker = worker_cmd(tmp_path, config, 1, tmp_path / "w")
    assert master[1:] == ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", "17077",
                          "--webui-port", "18080"]
    assert worker[-1] == "spark://127.0.0.1:17077"
    assert worker[worker.index("--cores") + 1] == "1" and worker[worker.index("--memory") + 1] == "2g"
    assert worker[worker.index("--webui-port") + 1] == str(config.spark_worker_webui_port + 1)


def test_the_connect_server_listens_on_loopback_with_its_own_local_master(tmp_path):
    config = ServicesConfig.from_env({"connect_port": 15999, "connect_cores": 3}, environ={})
    cmd = server_cmd(tmp_path, config)
    assert cmd[:3] == [str(tmp_path / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer"]
    assert cmd[cmd.index("--master") + 1] == "local[3]"
    conf = dict(cmd[i + 1].split("=", 1) for i, item in enumerate(cmd) if item == "--conf")
    assert conf["spark.connect.grpc.binding.address"] == "127.0.0.1" and conf["spark.connect.grpc.binding.port"] == "15999"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1" and conf["spark.ui.enabled"] == "false"
    # the shared launch session outlives Spark's one-hour default; a killed client's launch ends within ~35 s
    assert conf["spark.connect.session.manager.defaultSessionTimeout"] == "7d"
    assert conf["spark.connect.execute.manager.detachedTimeout"] == "30s"
    assert conf["spark.connect.execute.reattachable.senderMaxStreamDuration"] == "15s"
    assert conf["spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures"] == "1"


def test_the_connect_server_needs_a_core():
    with pytest.raises(ServiceError, match="The 'connect_cores' setting must be at least 1. Got 0 instead."):
        ServicesConfig.from_env({"connect_cores": 0}, environ={})


def test_config_reads_env_then_overrides():
    environ = {"H3SPARK_KAFKA_PORT": "19092", "H3SPARK_HDFS_PORT": "18020"}
    config = ServicesConfig.from_env({"hdfs_port": 28020, "spark_port": None}, environ=environ)
    assert (config.kafka_port, config.hdfs_port, config.spark_port) == (19092, 28020, 7077)


def test_config_rejects_a_bad_env_value_naming_the_variable():
    with pytest.raises(ServiceError, match=r"'kafka_port' setting must be of type int. Got 'abc' instead "
                                           r"\(from H3SPARK_KAFKA_PORT\)"):
        ServicesConfig.from_env(environ={"H3SPARK_KAFKA_PORT": "abc"})


def test_config_rejects_a_port_out_of_range():
    with pytest.raises(ServiceError, match=r"'spark_port' setting must be a port in the range \[1, 65535\]. "
                                           r"Got 70000 instead"):
        ServicesConfig.from_env({"spark_port": 70000}, environ={})


def test_endpoint_lines_are_exactly_what_the_cli_prints():
    assert Endpoint("kafka", "127.0.0.1:9092").line() == "kafka 127.0.0.1:9092"
    assert Endpoint("hdfs", "hdfs://127.0.0.1:8020", "http://127.0.0.1:9870").line() == \
        "hdfs hdfs://127.0.0.1:8020 (webhdfs http://127.0.0.1:9870)"
    assert Endpoint("spark", "spark://127.0.0.1:7077", "http://127.0.0.1:8080").line() == \
        "spark spark://127.0.0.1:7077"


def test_endpoint_round_trips_through_a_file(tmp_path):
    endpoint = Endpoint("hdfs", "hdfs://127.0.0.1:8020", "http://127.0.0.1:9870")
    endpoint.save(tmp_path / "e.json")
    loaded = Endpoint.load(tmp_path / "e.json")
    assert loaded == endpoint and loaded.webhdfs_url == "http://127.0.0.1:9870"
    assert Endpoint.load(tmp_path / "missing.json") is None
