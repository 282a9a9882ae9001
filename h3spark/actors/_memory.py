"""The in-process bus: the embedded default transport, for one-process networks and unit tests.

    >>> bus = MemoryBus()
    >>> bus.publish("t", Envelope("control", "lead", meta={"op": "start"}))
    >>> bus.subscribe(["t"], "g", handle).poll()
    1

It behaves as a Kafka topic with one partition: records stay (replay is a ``seek``), each
consumer group has its committed offsets, and of several subscriptions in one group the
oldest reads and the next takes over, from the committed offset, when it closes. Records are
stored without copying as read-only views, and one over ``max_record_bytes`` is refused, as a
broker refuses it.
"""

from __future__ import annotations

import threading
import time

from h3spark.actors._source import (DEFAULT_RECORD_BYTES, DEFAULT_SEEN_IDS, ReceiveConfig, Record, Source,
                                    SubscriptionStats)
from h3spark.actors._transport import Transport
from h3spark.errors import ServiceError


class MemoryBus(Transport):
    """Topics in this process's memory, shared by every thread that holds the bus."""

    def __init__(self, max_record_bytes: int = DEFAULT_RECORD_BYTES, seen_ids_capacity: int = DEFAULT_SEEN_IDS):
        super().__init__(max_record_bytes, seen_ids_capacity)
        self._logs: dict[str, list[Record]] = {}
        self._committed: dict[tuple[str, str], int] = {}
        self._members: dict[tuple[str, str], list[_MemorySource]] = {}
        self._changed = threading.Condition()

    def ensure_topics(self, topics: list[str]) -> None:
        with self._changed:
            for topic in topics:
                self._logs.setdefault(topic, [])

    def _send(self, topic: str, value, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        size = len(value) + len(key or b"") + sum(len(name) + len(data) for name, data in headers)
        if size > self.max_record_bytes:
            raise ServiceError(f"a record of {size} bytes for topic {topic!r} is over the limit of "
                               f"{self.max_record_bytes} bytes (max_record_bytes)")
        with self._changed:
            log = self._logs.setdefault(topic, [])
            log.append(Record(topic, 0, len(log), memoryview(value).toreadonly(), tuple(headers)))
            self._changed.notify_all()

    def flush(self, timeout_s: float = 120.0) -> None:
        """Nothing to wait for: a record is stored when it is sent."""

    def read(self, topic: str, timeout_s: float = 10.0) -> list[Record]:
        with self._changed:
            return list(self._logs.get(topic, ()))

    def committed(self, group: str, topic: str, partition: int = 0) -> int | None:
        with self._changed:
            return self._committed.get((group, topic))

    def _close(self) -> None:
        """Nothing to release: the records stay for whoever holds the bus."""

    def _open(self, topics: list[str], group: str, start: str, config: ReceiveConfig) -> Source:
        return _MemorySource(self, topics, group, start, config.max_batch)


class _MemorySource(Source):
    """One subscription's view of the bus; every field is guarded by the bus's lock."""

    def __init__(self, bus: MemoryBus, topics: list[str], group: str, start: str, max_batch: int):
        self.stats = SubscriptionStats()
        self.closed = False
        self._bus, self._topics, self._group, self._start, self._max_batch = bus, topics, group, start, max_batch
        self._positions: dict[str, int] = {}
        with bus._changed:
            for topic in topics:
                bus._members.setdefault((group, topic), []).append(self)

    def _acquire(self) -> list[str]:
        """The topics this subscription reads now (it is its group's oldest member on them)."""
        bus, owned, acquired = self._bus, [], False
        for topic in self._topics:
            if bus._members[(self._group, topic)][0] is not self:
                continue
            if topic not in self._positions:
                committed = bus._committed.get((self._group, topic))
                start = 0 if self._start == "earliest" else len(bus._logs[topic])
                self._positions[topic] = start if committed is None else committed
                acquired = True
            owned.append(topic)
        self.stats.assignments += acquired
        return owned

    def _take(self) -> list[Record]:
        taken: list[Record] = []
        for topic in self._acquire():
            position = self._positions[topic]
            records = self._bus._logs[topic][position:position + self._max_batch - len(taken)]
            self._positions[topic] = position + len(records)
            taken += records
            if len(taken) >= self._max_batch:
                break
        return taken

    def fetch(self, timeout_s: float) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        with self._bus._changed:
            while True:
                taken = [] if self.closed else self._take()
                remaining = deadline - time.monotonic()
                if taken or self.closed or remaining <= 0:
                    return taken
                self._bus._changed.wait(remaining)

    def release(self, commits: dict[tuple[str, int], int], rewinds: dict[tuple[str, int], int]) -> None:
        with self._bus._changed:
            for (topic, _partition), offset in commits.items():
                self._bus._committed[(self._group, topic)] = offset
            for (topic, _partition), offset in rewinds.items():
                self._positions[topic] = offset

    def commit(self, commits: dict[tuple[str, int], int]) -> None:
        self.release(commits, {})

    def revoked(self) -> list[tuple[str, int]]:
        return []  # a member reads until it closes

    def seek(self, topic: str, partition: int, offset: int) -> None:
        with self._bus._changed:
            if topic not in self._acquire():
                raise ValueError(f"cannot seek {topic!r}: another subscription of group {self._group!r} reads it")
            self._positions[topic] = offset

    def close(self) -> None:
        with self._bus._changed:
            self.closed = True
            for topic in self._topics:
                self._bus._members[(self._group, topic)].remove(self)
            self._bus._changed.notify_all()
