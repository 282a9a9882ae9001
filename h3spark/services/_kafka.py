"""Kafka 4 in KRaft mode: one process that is both broker and controller."""

from __future__ import annotations

import base64
import logging
import os
import uuid
from pathlib import Path
from typing import Callable

from h3spark.services._base import Daemon, Service, java_cmd
from h3spark.services._config import ServicesConfig
from h3spark.services._endpoint import Endpoint
from h3spark.services._maven import ensure_jars, ensure_spark_kafka_package
from h3spark.services._paths import jars_override_dir
from h3spark.services._process import HOST, accepts_connections, quiet_logger, run_logged
from h3spark.transport import kafka

logger = logging.getLogger(__name__)

READY_TOPIC = "h3spark-ready-probe"

LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def render_server_properties(config: ServicesConfig, data_dir: Path) -> str:
    """server.properties of a single combined broker+controller on loopback."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{config.kafka_controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{config.kafka_port},CONTROLLER://{HOST}:{config.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{config.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


# Kafka's Uuid.randomUuid() never hands out these two (Uuid.ZERO_UUID, Uuid.METADATA_TOPIC_ID).
_RESERVED_IDS = frozenset({"AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAQ"})


def new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).

    Like Kafka's own ``Uuid.randomUuid()``, it draws again when the id starts with ``-``
    (1 draw in 64): a command-line tool would read such an id as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-") and cluster_id not in _RESERVED_IDS:
            return cluster_id


def format_arguments(server_properties: Path) -> list[str]:
    """StorageTool's arguments that format a fresh data dir with a new cluster id (after its main class).

    The ``--cluster-id=ID`` form keeps the id one argument even if it began with '-'."""
    return ["format", f"--cluster-id={new_cluster_id()}", "-c", str(server_properties), "--ignore-formatted"]


class KafkaService(Service):
    name = "kafka"
    port_flags = "--kafka-port/--kafka-controller-port or H3SPARK_KAFKA_PORT/H3SPARK_KAFKA_CONTROLLER_PORT"

    def ports(self, config: ServicesConfig) -> dict[str, int]:
        return {"kafka broker": config.kafka_port, "kafka controller": config.kafka_controller_port}

    def endpoint(self, config: ServicesConfig) -> Endpoint:
        return Endpoint(service="kafka", uri=f"{HOST}:{config.kafka_port}")

    def prepare(self, config: ServicesConfig, java: str, state: Path) -> None:
        self._jars = ensure_jars("kafka")
        if jars_override_dir("kafka") is None:
            ensure_spark_kafka_package()
        else:  # jars given by hand means no Maven: Spark's Kafka source must come from elsewhere
            logger.warning("H3SPARK_JARS_DIR is set: not resolving Spark's Kafka source (%s) with Maven",
                           "spark-sql-kafka-0-10_2.13")
        data_dir = state / "data"
        (state / "logs").mkdir(parents=True, exist_ok=True)
        (state / "server.properties").write_text(render_server_properties(config, data_dir))
        (state / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        if not (data_dir / "meta.properties").is_file():
            self._format(config, java, state)

    def _command(self, config: ServicesConfig, java: str, state: Path, main: str) -> list[str]:
        props = {"log4j2.configurationFile": str(state / "log4j2.properties"), "kafka.logs.dir": str(state / "logs")}
        return java_cmd(java, config.heap, f"{self._jars}/*", main, props)

    def _format(self, config: ServicesConfig, java: str, state: Path) -> None:
        tool = self._command(config, java, state, "kafka.tools.StorageTool")
        cmd = [*tool, *format_arguments(state / "server.properties")]
        (state / "format.log").unlink(missing_ok=True)
        run_logged(f"kafka: formatting the storage in {state / 'data'}", cmd, state / "format.log")

    def daemons(self, config: ServicesConfig, java: str, state: Path) -> list[Daemon]:
        cmd = [*self._command(config, java, state, "kafka.Kafka"), str(state / "server.properties")]
        return [Daemon(role="kafka", cmd=cmd, env=dict(os.environ))]

    def is_ready(self, endpoint: Endpoint) -> bool:
        """A metadata request answers and a topic can be created (then deleted again)."""
        if not accepts_connections(int(endpoint.uri.rsplit(":", 1)[1])):
            return False
        with quiet_logger("kafka"):
            return _topic_round_trip(endpoint.uri)


def _topic_round_trip(bootstrap: str) -> bool:
    return kafka.topic_round_trip(bootstrap, READY_TOPIC, client_id="h3spark-services")
