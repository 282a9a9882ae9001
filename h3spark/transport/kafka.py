"""The one home of kafka-python in h3spark: every Kafka client is made here.

    >>> from h3spark.transport import kafka
    >>> kafka.ensure_topics("127.0.0.1:9092", ["events"])
    >>> producer = kafka.producer("127.0.0.1:9092")
    >>> kafka.send(producer, "events", b'{"x": 1}')

kafka-python is imported lazily (``import h3spark`` works without it) and its absence is a
DependencyError with the install hint. Its errors become ServiceError at the boundary
(:func:`translate_errors`), and a send waits for the broker's acknowledgement, so a record
that is refused (e.g. over max_request_size) is an error and never lost silently.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from h3spark.errors import ServiceError, missing_dependency

SEND_TIMEOUT_S = 10.0


def kafka_module():
    """The ``kafka`` package, or a DependencyError that says how to install it."""
    try:
        import kafka
    except ImportError:
        raise missing_dependency("kafka-python", "Talking to Kafka") from None
    return kafka


@contextlib.contextmanager
def translate_errors(purpose: str, servers: str, hint: str) -> Iterator[None]:
    """Turn kafka-python's errors inside the block into one ServiceError naming the broker."""
    kafka_module()
    from kafka.errors import KafkaError

    try:
        yield
    except KafkaError as error:
        raise ServiceError(f"cannot reach Kafka at {servers} for {purpose}: {error}. {hint}") from None


def ensure_topics(bootstrap_servers: str, topics: list[str], partitions: int = 1) -> None:
    """Create those of ``topics`` that do not exist yet (replication factor 1)."""
    kafka = kafka_module()
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in topics
                   if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:  # made by another client since list_topics: what we wanted
                pass
    finally:
        admin.close()


def topic_round_trip(bootstrap_servers: str, topic: str, client_id: str) -> bool:
    """True when the broker answers a metadata request and creates (then deletes) ``topic``."""
    kafka = kafka_module()
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id, request_timeout_ms=5000,
                                   reconnect_backoff_max_ms=1000)
    try:
        admin.describe_cluster()
        try:
            admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        except TopicAlreadyExistsError:  # left by an earlier probe: still a round trip
            pass
        ready = topic in admin.list_topics()
        admin.delete_topics([topic])
        return ready
    finally:
        admin.close()


def producer(bootstrap_servers: str):
    """A producer that sends at once (linger_ms=0)."""
    return kafka_module().KafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=0)


def send(kafka_producer, topic: str, value: bytes, timeout_s: float = SEND_TIMEOUT_S) -> None:
    """Send one record and wait for its acknowledgement; a refused record raises."""
    future = kafka_producer.send(topic, value)
    kafka_producer.flush(timeout_s)
    future.get(timeout=timeout_s)


def consumer_from_end(bootstrap_servers: str, topic: str, partition: int = 0):
    """A consumer assigned to one partition, positioned at its end now (it sees only later records)."""
    kafka = kafka_module()
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    assigned = kafka.TopicPartition(topic, partition)
    consumer.assign([assigned])
    consumer.seek_to_end(assigned)
    consumer.position(assigned)  # fixes the offset before anything is sent
    return consumer
