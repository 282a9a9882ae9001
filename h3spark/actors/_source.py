"""What a subscription receives: records, where they came from, the receiving limits, and the
:class:`Source` each transport implements (records in, offsets committed)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from h3spark.actors._chunks import DEFAULT_CHUNK_TIMEOUT_S, DEFAULT_MAX_PENDING_BYTES
from h3spark.actors._envelope import DEFAULT_MAX_MESSAGE_BYTES, Envelope

DEFAULT_RECORD_BYTES = 1_000_000  # Kafka's default limit (message.max.bytes) is 1,048,588
DEFAULT_SEEN_IDS = 100_000
DEAD_LETTER_SUFFIX = ".dead"
DETAIL_CHARS = 1000


@dataclass(frozen=True)
class Record:
    """One record as a topic holds it."""

    topic: str
    partition: int
    offset: int
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Delivery(NamedTuple):
    """Where a handled message came from (for a chunked one, its first chunk)."""

    topic: str
    partition: int
    offset: int


Handler = Callable[[Envelope, Delivery], None]


@dataclass(frozen=True)
class ReceiveConfig:
    """Limits of a subscription's receiving side."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES    # a (put together) message larger is refused
    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES    # memory for incomplete chunk sets
    chunk_timeout_s: float = DEFAULT_CHUNK_TIMEOUT_S      # an incomplete set older goes to the dead letter
    max_batch: int = 100                                  # records handed over per poll


@dataclass
class SubscriptionStats:
    handled: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    assignments: int = 0  # times partitions were given to this subscription (1 when no rebalance happened)


class SeenIds:
    """The newest ``capacity`` message ids handled, oldest forgotten first; shared by threads."""

    def __init__(self, capacity: int = DEFAULT_SEEN_IDS):
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, message_id) -> bool:
        with self._lock:
            return isinstance(message_id, str) and message_id in self._ids

    def add(self, message_id: str) -> None:
        with self._lock:
            self._add(message_id)

    def _add(self, message_id: str) -> None:
        self._ids[message_id] = None
        self._ids.move_to_end(message_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def ids(self) -> list[str]:
        """The ids remembered, oldest first (what an actor's snapshot keeps)."""
        with self._lock:
            return list(self._ids)

    def update(self, message_ids) -> None:
        """Remember ``message_ids`` (oldest first), as handled: a restored snapshot's."""
        with self._lock:
            for message_id in message_ids:
                self._add(message_id)


class Source(ABC):
    """What a transport implements for one subscription: records in, offsets committed."""

    stats: SubscriptionStats

    @abstractmethod
    def fetch(self, timeout_s: float) -> list[Record]:
        """The next records (waiting up to ``timeout_s``); the next fetch comes after ``release``."""

    @abstractmethod
    def release(self, commits: dict[tuple[str, int], int], rewinds: dict[tuple[str, int], int]) -> None:
        """Commit ``commits`` (next offset per partition), then read those in ``rewinds`` again from there."""

    @abstractmethod
    def commit(self, commits: dict[tuple[str, int], int]) -> None:
        """Commit ``commits`` outside a batch (after an incomplete chunk set was given up)."""

    @abstractmethod
    def revoked(self) -> list[tuple[str, int]]:
        """Partitions taken away since the last call."""

    @abstractmethod
    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read that partition from ``offset`` on (a replay)."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group after the last commits."""
