"""kafka-python and Spark's Kafka source against the real local KRaft broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("read_topic_job.py")


@pytest.fixture
def topic(kafka_bootstrap):
    from kafka.admin import KafkaAdminClient, NewTopic

    name = f"h3spark-test-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    yield name
    admin.delete_topics([name])
    admin.close()


def _produce(bootstrap: str, topic: str, values: list[str]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(topic, key=value.encode(), value=value.encode())
    producer.flush()
    producer.close()


def test_produce_and_consume(kafka_bootstrap, topic):
    from kafka import KafkaConsumer

    values = [f"message-{i}" for i in range(20)]
    _produce(kafka_bootstrap, topic, values)

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=f"g-{topic}",
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    received = []
    for record in consumer:
        received.append(record.value.decode())
        if len(received) == len(values):
            break
    consumer.close()
    assert sorted(received) == sorted(values)


def test_spark_batch_reads_a_topic(kafka_bootstrap, topic):
    from h3spark.services import ensure_spark_kafka_package

    values = [f"v{i}" for i in range(7)]
    _produce(kafka_bootstrap, topic, values)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               SPARK_LOCAL_IP="127.0.0.1")
    cmd = [str(Path(sys.executable).with_name("spark-submit")), "--master", "local[1]",
           "--packages", ensure_spark_kafka_package(), str(SCRIPT), kafka_bootstrap, topic]

    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)

    assert result.returncode == 0, result.stderr[-3000:]
    assert f"COUNT {len(values)}" in result.stdout
    assert f"VALUES {','.join(sorted(values))}" in result.stdout
