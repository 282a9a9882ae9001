"""Messages larger than a topic's limit travel as chunks, and are put together again on receipt.

    >>> for chunk in split(encode(envelope), envelope, max_record_bytes=1_000_000):
    ...     producer.send(topic, chunk)

A chunk is an envelope of kind ``chunk`` whose one array, ``bytes`` (uint8), is a slice of the
encoded message; its meta says which: ``of`` (the message's id), ``index`` and ``count``,
``offset`` (where the slice starts) and ``total_bytes`` and ``crc32`` (zlib) of the whole.
The :class:`Reassembler` takes chunks in any order and ignores repeats; it holds at most
``max_pending_bytes`` of incomplete messages (reserved in full at a message's first chunk,
evicting the oldest set when a new one does not fit) and gives up a set after ``timeout_s``;
repeats of the last 1024 messages it completed are ignored too.
Sets it gives up on, with why, are collected in ``abandoned`` for the dead-letter topic.
"""

from __future__ import annotations

import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from h3spark.actors._envelope import DEFAULT_MAX_MESSAGE_BYTES, Envelope, EnvelopeError, encode

CHUNK_HEADROOM = 4096  # bytes of a record kept for the chunk's own prefix and header
CHUNK_META = ("of", "index", "count", "offset", "total_bytes", "crc32")
DEFAULT_MAX_PENDING_BYTES = 1024 * 2**20
DEFAULT_CHUNK_TIMEOUT_S = 300.0
FINISHED_IDS = 1024  # completed messages whose late repeats are ignored


def split(data, envelope: Envelope, max_record_bytes: int) -> Iterator[bytearray]:
    """The chunk envelopes of ``data`` (``envelope`` encoded), each at most ``max_record_bytes`` long."""
    piece = max_record_bytes - CHUNK_HEADROOM
    if piece < CHUNK_HEADROOM:
        raise ValueError(f"max_record_bytes must be at least {2 * CHUNK_HEADROOM} to split a message into chunks. "
                         f"Got {max_record_bytes} instead")
    view = memoryview(data)
    count = -(-len(view) // piece)
    crc = zlib.crc32(view)
    for index in range(count):
        part = np.frombuffer(view[index * piece:(index + 1) * piece], dtype=np.uint8)
        meta = {"of": envelope.id, "index": index, "count": count, "offset": index * piece,
                "total_bytes": len(view), "crc32": crc}
        yield encode(Envelope("chunk", envelope.sender, envelope.model_version, None, {"bytes": part}, meta))


@dataclass(frozen=True)
class ChunkInfo:
    """A chunk's meta, checked."""

    of: str
    index: int
    count: int
    offset: int
    total_bytes: int
    crc32: int


def chunk_info(chunk: Envelope) -> ChunkInfo:
    """The checked meta of a ``chunk`` envelope, or an EnvelopeError (reason ``bad_chunk``)."""
    meta = chunk.meta
    ints = all(type(meta.get(key)) is int and meta[key] >= 0 for key in CHUNK_META[1:])
    data = chunk.arrays.get("bytes")
    if sorted(meta) != sorted(CHUNK_META) or not ints or not isinstance(meta["of"], str) or len(meta["of"]) != 32 \
            or list(chunk.arrays) != ["bytes"] or data.dtype != np.uint8 or data.ndim != 1:
        raise EnvelopeError("bad_chunk", f"refused a chunk from {chunk.sender}: its meta needs the integer fields "
                                         f"{', '.join(CHUNK_META[1:])} and the message id 'of', and one uint8 array "
                                         f"'bytes'. Got meta keys {sorted(meta)} and arrays {sorted(chunk.arrays)}")
    info = ChunkInfo(*(meta[key] for key in CHUNK_META))
    if info.index >= info.count or info.offset + len(data) > info.total_bytes or info.crc32 >= 2**32:
        raise EnvelopeError("bad_chunk", f"refused chunk {info.index} of {info.count} of message {info.of}: "
                                         f"{len(data)} bytes at offset {info.offset} of {info.total_bytes}")
    return info


@dataclass
class PendingSet:
    """An incomplete message: where its first chunk came from, and what has arrived."""

    info: ChunkInfo
    sender: str
    topic: str
    partition: int
    first_offset: int
    started_s: float
    buffer: bytearray
    received: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Abandoned:
    """A chunk set given up on: its message, where its first chunk lies, and why."""

    message_id: str
    sender: str
    topic: str
    partition: int
    first_offset: int
    reason: str
    detail: str


class Reassembler:
    """Chunks in, whole messages out; bounded in memory and in time."""

    def __init__(self, max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES, timeout_s: float = DEFAULT_CHUNK_TIMEOUT_S,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, clock=time.monotonic):
        self.max_pending_bytes = max_pending_bytes
        self.timeout_s = timeout_s
        self.max_message_bytes = max_message_bytes
        self._clock = clock
        self._sets: dict[str, PendingSet] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self.abandoned: list[Abandoned] = []

    @property
    def pending_bytes(self) -> int:
        return sum(len(pending.buffer) for pending in self._sets.values())

    def add(self, chunk: Envelope, info: ChunkInfo, topic: str, partition: int, offset: int):
        """``(message bytes, offset of its first chunk)`` when ``chunk`` completes its message, else None
        (also for a repeat of a chunk of one of the last messages completed)."""
        if info.of in self._finished:
            return None
        pending = self._sets.get(info.of) or self._start(chunk, info, topic, partition, offset)
        if (pending.info.count, pending.info.total_bytes, pending.info.crc32, pending.sender) != \
                (info.count, info.total_bytes, info.crc32, chunk.sender):
            raise EnvelopeError("bad_chunk", f"refused chunk {info.index} of message {info.of}: its count, size, "
                                             f"checksum or sender differ from the message's first chunk")
        if info.index in pending.received:
            return None
        data = chunk.arrays["bytes"]
        np.frombuffer(pending.buffer, np.uint8, len(data), info.offset)[...] = data
        pending.received.add(info.index)
        if len(pending.received) < info.count:
            return None
        del self._sets[info.of]
        self._finished[info.of] = None
        if len(self._finished) > FINISHED_IDS:
            self._finished.popitem(last=False)
        if zlib.crc32(pending.buffer) != info.crc32:
            raise EnvelopeError("bad_chunk", f"refused message {info.of} from {chunk.sender}: its {info.count} "
                                             f"chunks put together do not match its checksum")
        return pending.buffer, pending.first_offset

    def _start(self, chunk: Envelope, info: ChunkInfo, topic: str, partition: int, offset: int) -> PendingSet:
        limit = min(self.max_message_bytes, self.max_pending_bytes)
        if info.total_bytes > limit:
            raise EnvelopeError("oversized", f"refused message {info.of} from {chunk.sender}: {info.total_bytes} "
                                             f"bytes in chunks, over the limit of {limit} bytes (max_message_bytes, "
                                             f"max_pending_bytes)")
        while self._sets and self.pending_bytes + info.total_bytes > self.max_pending_bytes:
            oldest = min(self._sets.values(), key=lambda pending: pending.started_s)
            self._abandon(oldest, "evicted", f"evicted to make room for {info.of}: incomplete messages may "
                                             f"hold {self.max_pending_bytes} bytes (max_pending_bytes)")
        pending = PendingSet(info, chunk.sender, topic, partition, offset, self._clock(), bytearray(info.total_bytes))
        self._sets[info.of] = pending
        return pending

    def _abandon(self, pending: PendingSet, reason: str, detail: str) -> None:
        del self._sets[pending.info.of]
        got = f"{len(pending.received)} of {pending.info.count} chunks arrived; "
        self.abandoned.append(Abandoned(pending.info.of, pending.sender, pending.topic, pending.partition,
                                        pending.first_offset, reason, got + detail))

    def expire(self) -> None:
        """Give up the sets whose first chunk came more than ``timeout_s`` ago."""
        now = self._clock()
        for pending in [p for p in self._sets.values() if now - p.started_s > self.timeout_s]:
            self._abandon(pending, "incomplete", f"the rest did not come within {self.timeout_s} s (chunk_timeout_s)")

    def forget(self, message_id: str) -> None:
        """Take its chunks again: the message was put together but not handled (its handler raised)."""
        self._finished.pop(message_id, None)

    def take_abandoned(self) -> list[Abandoned]:
        taken, self.abandoned = self.abandoned, []
        return taken

    def drop_partition(self, topic: str, partition: int) -> None:
        """Forget the sets from a partition this consumer no longer reads (its new reader starts them again)."""
        for key in [key for key, p in self._sets.items() if (p.topic, p.partition) == (topic, partition)]:
            del self._sets[key]

    def low_water(self, topic: str, partition: int) -> int | None:
        """The offset of the earliest first chunk still incomplete on that partition: commits stop there."""
        offsets = [p.first_offset for p in self._sets.values() if (p.topic, p.partition) == (topic, partition)]
        return min(offsets, default=None)
