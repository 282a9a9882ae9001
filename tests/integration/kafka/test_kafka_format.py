"""Kafka's real StorageTool formats a fresh state dir, even with a cluster id that begins with '-'."""

from __future__ import annotations

import shutil

from h3spark.services import ServicesConfig
from h3spark.services import _kafka
from h3spark.services._kafka import KafkaService, render_server_properties
from tests.conftest import require


def test_storage_tool_takes_an_id_that_begins_with_a_dash(tmp_path, monkeypatch):
    from h3spark.services._maven import ensure_jars

    require(shutil.which("java") is not None, "Java 17 is needed for Kafka's StorageTool; install a JDK")
    monkeypatch.setattr(_kafka, "new_cluster_id", lambda: "-AbCdEfGhIjKlMnOpQrStU")
    config = ServicesConfig(kafka_port=19192, kafka_controller_port=19193)
    state = tmp_path / "kafka"
    state.mkdir()
    (state / "server.properties").write_text(render_server_properties(config, state / "data"))
    (state / "log4j2.properties").write_text(_kafka.LOG4J2_PROPERTIES)
    service = KafkaService()
    service._jars = ensure_jars("kafka")
    service._format(config, shutil.which("java"), state)
    assert "cluster.id=-AbCdEfGhIjKlMnOpQrStU" in (state / "data" / "meta.properties").read_text()
