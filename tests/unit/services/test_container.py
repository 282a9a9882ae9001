"""The container roles of docker/entrypoint.py, rendered without Docker (no jar download: H3SPARK_JARS_DIR)."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest

from h3spark.errors import UsageError
from h3spark.services import CONTAINER_ROLES, ServicesConfig, prepare_role

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def jars(tmp_path, monkeypatch):
    for service in ("kafka", "hdfs"):
        (tmp_path / "jars" / service).mkdir(parents=True)
        (tmp_path / "jars" / service / "placeholder.jar").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "jars" / "hdfs" / "hadoop-hdfs-3.5.0-tests.jar", "w") as archive:
        archive.writestr("webapps/hdfs/index.html", "<html></html>")
    monkeypatch.setenv("H3SPARK_JARS_DIR", str(tmp_path / "jars"))
    monkeypatch.setenv("H3SPARK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KAFKA_HOSTNAME", "kafka")


def test_kafka_role_formats_fresh_state_with_a_cluster_id_that_is_no_option(tmp_path, jars):
    commands = prepare_role("kafka", tmp_path / "data", tmp_path / "etc", ServicesConfig.from_env())
    assert commands.main[-2:] == ["kafka.Kafka", str(tmp_path / "etc" / "kafka" / "server.properties")]
    cluster_flag = next(arg for arg in commands.setup if arg.startswith("--cluster-id="))
    assert len(cluster_flag.split("=", 1)[1]) == 22
    properties = (tmp_path / "etc" / "kafka" / "server.properties").read_text()
    assert "advertised.listeners=INTERNAL://kafka:29092,EXTERNAL://localhost:9092" in properties


def test_kafka_role_skips_formatting_state_that_exists(tmp_path, jars):
    (tmp_path / "data" / "kafka").mkdir(parents=True)
    (tmp_path / "data" / "kafka" / "meta.properties").write_text("cluster.id=x\n")
    assert prepare_role("kafka", tmp_path / "data", tmp_path / "etc", ServicesConfig.from_env()).setup == []


def test_namenode_role_binds_every_interface_inside_its_container(tmp_path, jars):
    commands = prepare_role("namenode", tmp_path / "data", tmp_path / "etc", ServicesConfig.from_env())
    assert commands.setup[-4:] == ["-format", "-nonInteractive", "-clusterid", "h3spark"]
    site = (tmp_path / "etc" / "hadoop" / "hdfs-site.xml").read_text()
    assert "<name>dfs.namenode.rpc-bind-host</name>" in site and "0.0.0.0" in site


def test_an_unknown_role_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="unknown service role 'zookeeper'"):
        prepare_role("zookeeper", tmp_path, tmp_path, ServicesConfig.from_env())
    assert set(CONTAINER_ROLES) == {"kafka", "namenode", "datanode", "spark-master", "spark-worker"}


def test_docker_files_use_only_public_names():
    tree = ast.parse((ROOT / "docker" / "entrypoint.py").read_text())
    private = [f"{node.module}: {[alias.name for alias in node.names]}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("h3spark")
               and (any(part.startswith("_") for part in node.module.split("."))
                    or any(alias.name.startswith("_") for alias in node.names))]
    assert not private
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "h3spark.services._" not in dockerfile
