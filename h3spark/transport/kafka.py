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
import time
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


# Consumer groups, reliable producers and offsets, for the actors' transport (h3spark/actors/_kafka.py).
# Partitions are (topic, partition) tuples here, so kafka-python's types stay in this module.

def reliable_producer(bootstrap_servers: str, max_request_size: int, **options):
    """A producer that waits for every in-sync replica (acks=all), retries until delivery_timeout_ms,
    idempotently (no duplicates from its own retries), and reconnects with a backoff of at most 1 s."""
    settings = {"acks": "all", "enable_idempotence": True, "reconnect_backoff_max_ms": 1000,
                "max_request_size": max_request_size, **options}
    return kafka_module().KafkaProducer(bootstrap_servers=bootstrap_servers, **settings)


def group_consumer(bootstrap_servers: str, group: str, topics: list[str], on_assigned, on_revoked, **options):
    """A consumer in ``group`` subscribed to ``topics`` that commits only when told to; ``on_assigned`` and
    ``on_revoked`` are called with lists of (topic, partition) when the group rebalances."""
    kafka = kafka_module()

    class Listener(kafka.ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            on_revoked([(tp.topic, tp.partition) for tp in revoked])

        def on_partitions_assigned(self, assigned):
            on_assigned([(tp.topic, tp.partition) for tp in assigned])

    settings = {"enable_auto_commit": False, "auto_offset_reset": "earliest", "reconnect_backoff_max_ms": 1000,
                **options}
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, **settings)
    consumer.subscribe(topics, listener=Listener())
    return consumer


def commit(consumer, offsets: dict[tuple[str, int], int], timeout_s: float) -> None:
    """Commit the next offset of each (topic, partition) that the consumer still owns."""
    kafka = kafka_module()
    owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
    chosen = {kafka.TopicPartition(*key): kafka.OffsetAndMetadata(offset, "", -1)
              for key, offset in offsets.items() if key in owned}
    if chosen:
        consumer.commit(chosen, timeout_ms=int(timeout_s * 1000))


def seek(consumer, partition: tuple[str, int], offset: int) -> None:
    """Read ``partition`` from ``offset`` on, if the consumer owns it."""
    kafka = kafka_module()
    assigned = kafka.TopicPartition(*partition)
    if assigned in consumer.assignment():
        consumer.seek(assigned, offset)


def pause_all(consumer) -> None:
    consumer.pause(*consumer.assignment())


def resume_all(consumer) -> None:
    consumer.resume(*consumer.paused())


def committed_offsets(bootstrap_servers: str, group: str) -> dict[tuple[str, int], int]:
    """The offsets ``group`` committed, by (topic, partition)."""
    admin = kafka_module().KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10000)
    try:
        if hasattr(admin, "list_consumer_group_offsets"):  # kafka-python 2.x, the pinned one
            offsets = admin.list_consumer_group_offsets(group)
        else:  # kafka-python 3.x
            offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def read_topic(bootstrap_servers: str, topic: str, timeout_s: float) -> list:
    """Every record of ``topic``'s partitions from the beginning to their end now (no group)."""
    kafka = kafka_module()
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [kafka.TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records, deadline = [], time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records += batch
        return records
    finally:
        consumer.close()
