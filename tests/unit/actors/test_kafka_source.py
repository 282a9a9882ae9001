"""The Kafka source's consumer thread, over a stand-in for kafka-python's consumer (no broker): while the
subscription holds a batch, the thread must not sit in a poll of paused partitions, which kafka-python
spends asleep (retry_backoff_ms, 100 ms, per poll: about 10 batches a second at most, whatever the load)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from h3spark.actors._kafka import _KafkaSource
from h3spark.transport import kafka

WAIT_S = 30.0  # only reached on a failure


class PausedPollSleeps:
    """A consumer of one partition holding ``count`` records, ``per_poll`` per poll. A poll with a timeout
    while its partition is paused blocks until the test ends: kafka-python's sleep, stretched."""

    def __init__(self, count: int, per_poll: int):
        self.partition = kafka.kafka_module().TopicPartition("t", 0)
        self.records = [SimpleNamespace(topic="t", partition=0, offset=i, value=b"%d" % i, headers=[])
                        for i in range(count)]
        self.per_poll, self.position, self.paused_now = per_poll, 0, False
        self.released = threading.Event()
        self.blocked_polls = 0

    def assignment(self):
        return {self.partition}

    def pause(self, *partitions):
        self.paused_now = self.paused_now or bool(partitions)

    def paused(self):
        return {self.partition} if self.paused_now else set()

    def resume(self, *partitions):
        self.paused_now = self.paused_now and not partitions

    def poll(self, timeout_ms=0):
        if self.paused_now:
            if timeout_ms > 0:
                self.blocked_polls += 1
                self.released.wait()
            return {}
        taken = self.records[self.position:self.position + self.per_poll]
        self.position += len(taken)
        return {self.partition: taken} if taken else {}

    def commit(self, offsets, timeout_ms=None):
        pass

    def close(self, autocommit=False):
        self.released.set()


@pytest.fixture
def paused_poll_sleeps(monkeypatch):
    consumer = PausedPollSleeps(count=6, per_poll=2)
    monkeypatch.setattr(kafka, "group_consumer", lambda *args, **options: consumer)
    yield consumer
    consumer.released.set()


def test_a_released_batch_is_followed_by_the_next_without_a_poll_of_paused_partitions(paused_poll_sleeps):
    source = _KafkaSource("stand-in:9092", ["t"], "g", {})
    try:
        offsets = []
        for _ in range(3):
            batch = source.fetch(timeout_s=WAIT_S)
            offsets += [record.offset for record in batch]
            source.release({("t", 0): batch[-1].offset + 1} if batch else {}, {})
        assert offsets == [0, 1, 2, 3, 4, 5]
        assert paused_poll_sleeps.blocked_polls == 0
    finally:
        paused_poll_sleeps.released.set()
        source.close()
