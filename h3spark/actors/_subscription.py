"""A subscription: the receiving side every transport shares (decode, reassemble, skip seen ids,
handle, dead-letter, commit), over a transport's :class:`Source` of records."""

from __future__ import annotations

import logging
from typing import Callable

from h3spark.actors._chunks import Abandoned, Reassembler, chunk_info
from h3spark.actors._envelope import Envelope, EnvelopeError, decode
from h3spark.actors._source import (DEAD_LETTER_SUFFIX, DETAIL_CHARS, Delivery, Handler, ReceiveConfig, Record,
                                       SeenIds, Source, SubscriptionStats)

logger = logging.getLogger(__name__)

DeadLetterSink = Callable[[str, bytes, list[tuple[str, bytes]]], None]


class Subscription:
    """Call :meth:`poll` in a loop; each message is handed to ``handler(envelope, delivery)`` once."""

    def __init__(self, source: Source, group: str, handler: Handler, seen: SeenIds, dead_letter: DeadLetterSink,
                 config: ReceiveConfig):
        self.group = group
        self._source = source
        self._handler = handler
        self._seen = seen
        self._dead_letter_sink = dead_letter
        self._config = config
        self._reassembler = Reassembler(config.max_pending_bytes, config.chunk_timeout_s, config.max_message_bytes)
        self._first_offset = 0
        self._done: dict[tuple[str, int], int] = {}  # next offset after what was handled, per partition
        self.closed = False

    @property
    def stats(self) -> SubscriptionStats:
        return self._source.stats

    def poll(self, timeout_s: float = 1.0) -> int:
        """Handle what arrives within ``timeout_s``; the number of messages handled.

        A handler's error propagates after the offsets before its message were committed;
        the next poll delivers that message again.
        """
        if self.closed:
            raise ValueError(f"this subscription of group {self.group!r} is closed; subscribe again to read on")
        for topic, partition in self._source.revoked():
            self._reassembler.drop_partition(topic, partition)
            self._done.pop((topic, partition), None)
        self._reassembler.expire()
        given_up = self._dead_letter_abandoned()
        if given_up:  # the commits they held back can move on
            self._source.commit({key: self._commit_bound(key, offset) for key, offset in self._done.items()
                                 if key in given_up})
        records = self._source.fetch(timeout_s)
        done: dict[tuple[str, int], int] = {}
        handled = 0
        try:
            for record in records:
                handled += self._receive(record)
                done[(record.topic, record.partition)] = record.offset + 1
        except BaseException:
            self._release(records, done, failed=True)
            raise
        self._release(records, done, failed=False)
        return handled

    def _release(self, records: list[Record], done: dict[tuple[str, int], int], failed: bool) -> None:
        rewinds: dict[tuple[str, int], int] = {}
        for record in records:  # the first record of each partition not handled is where reading resumes
            key = (record.topic, record.partition)
            if key not in rewinds and record.offset >= done.get(key, -1):
                rewinds[key] = record.offset
        if failed and rewinds:  # the first partition found holds the failing message: from its first chunk
            rewinds[next(iter(rewinds))] = self._first_offset
        self._done.update({key: min(offset, rewinds.get(key, offset)) for key, offset in done.items()})
        self._source.release({key: self._commit_bound(key, self._done[key]) for key in done}, rewinds)

    def _commit_bound(self, key: tuple[str, int], offset: int) -> int:
        """``offset``, or the first chunk of an incomplete message on that partition when that is lower."""
        low_water = self._reassembler.low_water(*key)
        return offset if low_water is None else min(offset, low_water)

    def _receive(self, record: Record) -> int:
        """1 if ``record`` completed a message that was handled now, else 0."""
        self._first_offset = record.offset
        try:
            envelope = decode(record.value, self._config.max_message_bytes)
            if envelope.kind == "chunk":
                envelope = self._reassemble(envelope, record)
                if envelope is None:
                    return 0
        except EnvelopeError as error:
            self._dead_letter(record.topic, record.value, error.reason, str(error),
                              f"{record.topic}/{record.partition}/{self._first_offset}")
            return 0
        if envelope.id in self._seen:
            self.stats.duplicates += 1
            logger.debug("skipped a message handled before id=%s group=%s", envelope.id, self.group)
            return 0
        try:
            self._handler(envelope, Delivery(record.topic, record.partition, self._first_offset))
        except BaseException:
            self._reassembler.forget(envelope.id)  # its chunks come again, from the first
            raise
        self._seen.add(envelope.id)
        self.stats.handled += 1
        return 1

    def _reassemble(self, chunk: Envelope, record: Record) -> Envelope | None:
        info = chunk_info(chunk)
        if info.of in self._seen:
            self.stats.duplicates += info.index == 0
            return None
        try:
            whole = self._reassembler.add(chunk, info, record.topic, record.partition, record.offset)
        finally:
            self._dead_letter_abandoned()
        if whole is None:
            return None
        data, self._first_offset = whole
        envelope = decode(data, self._config.max_message_bytes)
        if envelope.id != info.of:
            raise EnvelopeError("bad_chunk", f"refused message {info.of}: its chunks hold message {envelope.id}")
        return envelope

    def _dead_letter_abandoned(self) -> set[tuple[str, int]]:
        """Dead-letter the chunk sets given up; the partitions they came from."""
        abandoned = self._reassembler.take_abandoned()
        for lost in abandoned:
            self._dead_letter_set(lost)
        return {(lost.topic, lost.partition) for lost in abandoned}

    def _dead_letter_set(self, lost: Abandoned) -> None:
        where = f"{lost.topic}/{lost.partition}/{lost.first_offset}"
        self._dead_letter(lost.topic, b"", lost.reason, f"message {lost.message_id} from {lost.sender}: {lost.detail}",
                          where, message_id=lost.message_id)

    def _dead_letter(self, topic: str, value, reason: str, detail: str, where: str, message_id: str = "") -> None:
        """Send what could not be handled to ``topic.dead``, with why and where in its headers."""
        logger.warning("moved a message to the dead-letter topic: %s source=%s group=%s", detail, where, self.group)
        headers = [("h3spark-reason", reason.encode()), ("h3spark-detail", detail[:DETAIL_CHARS].encode()),
                   ("h3spark-source", where.encode()), ("h3spark-group", self.group.encode())]
        if message_id:
            headers.append(("h3spark-message-id", message_id.encode()))
        self._dead_letter_sink(topic + DEAD_LETTER_SUFFIX, value, headers)
        self.stats.dead_letters += 1

    def seek(self, topic: str, offset: int, partition: int = 0) -> None:
        """Read ``topic`` again from ``offset``: a replay (messages handled before are skipped, by id)."""
        self._source.seek(topic, partition, offset)

    def close(self) -> None:
        """Commit what was handled and leave the group; a closed subscription's group can be joined again."""
        if not self.closed:
            self.closed = True
            self._source.close()
