"""The transport contract: publish envelopes to topics, and subscribe handlers to them in groups.

    >>> transport = MemoryBus()                      # or KafkaTransport("127.0.0.1:9092")
    >>> transport.publish("digits.raw", Envelope("raw", "reader", arrays={"x": x}))
    >>> subscription = transport.subscribe(["digits.raw"], "learner", handle)
    >>> subscription.poll(timeout_s=1.0)             # calls handle(envelope, delivery) per message
    1

Both implementations keep the same promises (tests/unit/actors/contract.py holds the tests,
run against each):

- A message larger than ``max_record_bytes`` travels as chunks and is put together on receipt.
- A group's committed offset moves past a message only after its handler returned (at-least-once),
  and never past the first chunk of a message still incomplete. A handler that raises leaves its
  message unhandled: ``poll`` raises that error and the next ``poll`` delivers the message again.
- Handling is idempotent by message id: the ids handled in a group are remembered (the newest
  ``seen_ids_capacity`` of them, in this process), and a message seen again is skipped and counted.
  Not remembered, so handled again: ids older than that, ids from before a restart, and messages
  of a partition that another process of the group took over.
- A message that cannot be decoded (malformed, unknown version, oversized, a bad or incomplete
  chunk set) goes to ``TOPIC.dead`` with the reason in its headers, is logged, and is committed.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from h3spark.actors._chunks import CHUNK_HEADROOM, split
from h3spark.actors._envelope import Envelope, encode
from h3spark.actors._source import (DEAD_LETTER_SUFFIX, DEFAULT_RECORD_BYTES, DEFAULT_SEEN_IDS, Handler,
                                    ReceiveConfig, Record, SeenIds, Source)
from h3spark.actors._subscription import Subscription


class Transport(ABC):
    """Topics of envelopes: ``publish`` to them, ``subscribe`` a handler in a consumer group.

    ``max_record_bytes`` is the topic's limit for one record; a longer message is sent as chunks.
    """

    def __init__(self, max_record_bytes: int = DEFAULT_RECORD_BYTES, seen_ids_capacity: int = DEFAULT_SEEN_IDS):
        self.max_record_bytes = max_record_bytes
        self.seen_ids_capacity = seen_ids_capacity
        self._seen: dict[str, SeenIds] = {}
        self._seen_lock = threading.Lock()
        self._subscriptions: list[Subscription] = []

    def publish(self, topic: str, envelope: Envelope, key: bytes | None = None) -> None:
        """Send ``envelope`` (as chunks when it is over ``max_record_bytes``); the sender's name is the default
        key, so one sender's messages stay in order. Failures surface here or at :meth:`flush`."""
        data = encode(envelope)
        key = envelope.sender.encode() if key is None else key
        self.ensure_topics([topic])
        if len(data) <= self.max_record_bytes:
            self._send(topic, data, key, [])
            return
        for chunk in split(data, envelope, self.max_record_bytes):
            self._send(topic, chunk, key, [])

    def subscribe(self, topics: list[str], group: str, handler: Handler, start: str = "earliest",
                  config: ReceiveConfig = ReceiveConfig()) -> Subscription:
        """Handle the messages of ``topics`` in consumer group ``group``; a new group starts at the
        ``earliest`` or the ``latest`` offset, an existing one where it committed."""
        if start not in ("earliest", "latest"):
            raise ValueError(f"The 'start' parameter of subscribe must be 'earliest' or 'latest'. "
                             f"Got {start!r} instead")
        self.ensure_topics([*topics, *(topic + DEAD_LETTER_SUFFIX for topic in topics)])
        source = self._open(list(topics), group, start, config)
        subscription = Subscription(source, group, handler, self._seen_ids(group), self._send_dead_letter, config)
        self._subscriptions.append(subscription)
        return subscription

    def seen(self, group: str) -> SeenIds:
        """The ids ``group`` handled in this process (an actor restored from a snapshot adds the snapshot's)."""
        return self._seen_ids(group)

    def _seen_ids(self, group: str) -> SeenIds:
        with self._seen_lock:
            return self._seen.setdefault(group, SeenIds(self.seen_ids_capacity))

    def _send_dead_letter(self, topic: str, value, headers: list[tuple[str, bytes]]) -> None:
        """Send a dead letter; a value that would not fit beside its headers is cut, its length in a header."""
        room = self.max_record_bytes - sum(len(name) + len(data) for name, data in headers) - CHUNK_HEADROOM
        if len(value) > room:
            headers = [*headers, ("h3spark-value-bytes", str(len(value)).encode())]
            value = bytes(memoryview(value)[:max(room, 0)])
        self._send(topic, value, None, headers)
        self.flush()

    @abstractmethod
    def ensure_topics(self, topics: list[str]) -> None:
        """Create those of ``topics`` that do not exist."""

    @abstractmethod
    def _send(self, topic: str, value, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """Send one record of at most ``max_record_bytes``."""

    @abstractmethod
    def _open(self, topics: list[str], group: str, start: str, config: ReceiveConfig) -> Source:
        """A source of records for one subscription."""

    @abstractmethod
    def flush(self, timeout_s: float = 120.0) -> None:
        """Wait until everything published was acknowledged; raise ServiceError for what was not."""

    @abstractmethod
    def read(self, topic: str, timeout_s: float = 10.0) -> list[Record]:
        """Every record of ``topic`` (outside any group), e.g. to inspect a dead-letter topic."""

    @abstractmethod
    def committed(self, group: str, topic: str, partition: int = 0) -> int | None:
        """The offset ``group`` committed on that partition, or None."""

    def close(self) -> None:
        """Close the subscriptions still open (committing what they handled), flush, release the connections."""
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()
        self._close()

    @abstractmethod
    def _close(self) -> None:
        """Flush and release the connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
