"""The Kafka transport: the same contract as the in-process bus, over a broker (clients from
:mod:`h3spark.transport.kafka`).

    >>> with KafkaTransport("127.0.0.1:9092") as transport:
    ...     transport.publish("digits.raw", envelope)
    ...     transport.flush()

Sending: the producer waits for all in-sync replicas (acks=all), retries until its
``delivery_timeout_ms`` (120 s unless ``producer_options`` say otherwise) and is idempotent,
so a broker that goes away and comes back within that time loses nothing and duplicates
nothing; :meth:`KafkaTransport.flush`, and the next ``publish``, raise what could not be sent.

Receiving: each subscription's consumer lives on a thread of its own, which polls every 0.1 s.
It hands a batch to the subscription and pauses its partitions until the batch is released,
polling on (so a handler slower than ``max_poll_interval_ms`` does not cost the group its
member); it commits the offsets the subscription releases, retrying while the broker is away.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time

from h3spark.actors._source import DEFAULT_RECORD_BYTES, DEFAULT_SEEN_IDS, ReceiveConfig, Record, Source, \
    SubscriptionStats
from h3spark.actors._transport import Transport
from h3spark.errors import ServiceError
from h3spark.transport import kafka

logger = logging.getLogger(__name__)

REQUEST_OVERHEAD_BYTES = 64 * 1024  # a produce request's own framing around its largest record
POLL_S = 0.1
COMMIT_TIMEOUT_S = 10.0
RETRY_S = 1.0
CLOSE_TIMEOUT_S = 30.0
_HINT = "Is the broker up (h3spark services up kafka)?"


class KafkaTransport(Transport):
    """Topics on a Kafka broker; ``consumer_options`` and ``producer_options`` go to kafka-python
    (e.g. ``{"max_poll_interval_ms": 600000}``)."""

    def __init__(self, bootstrap_servers: str, max_record_bytes: int = DEFAULT_RECORD_BYTES,
                 seen_ids_capacity: int = DEFAULT_SEEN_IDS, partitions: int = 1, consumer_options: dict | None = None,
                 producer_options: dict | None = None):
        super().__init__(max_record_bytes, seen_ids_capacity)
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.consumer_options = dict(consumer_options or {})
        self.producer_options = dict(producer_options or {})
        self._producer = None
        self._sent: collections.deque = collections.deque()
        self._topics: set[str] = set()

    def ensure_topics(self, topics: list[str]) -> None:
        missing = sorted(set(topics) - self._topics)
        if missing:
            with kafka.translate_errors("creating topics", self.bootstrap_servers, _HINT):
                kafka.ensure_topics(self.bootstrap_servers, missing, self.partitions)
            self._topics.update(missing)

    def _send(self, topic: str, value, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        self._raise_failed(wait=False)
        with kafka.translate_errors(f"sending to topic {topic!r}", self.bootstrap_servers, _HINT):
            if self._producer is None:
                self._producer = kafka.reliable_producer(self.bootstrap_servers,
                                                         self.max_record_bytes + REQUEST_OVERHEAD_BYTES,
                                                         **self.producer_options)
            self._sent.append((topic, self._producer.send(topic, value=value, key=key, headers=headers or None)))

    def flush(self, timeout_s: float = 120.0) -> None:
        if self._producer is not None:
            with kafka.translate_errors("flushing sent messages", self.bootstrap_servers, _HINT):
                self._producer.flush(timeout_s)
        self._raise_failed(wait=True)

    def _raise_failed(self, wait: bool) -> None:
        """Forget the acknowledged sends; raise one error naming the failed ones."""
        failed = []
        while self._sent and (wait or self._sent[0][1].is_done):
            topic, future = self._sent.popleft()
            if not future.is_done or future.failed():
                failed.append((topic, future.exception or "not acknowledged"))
        if failed:
            topic, error = failed[0]
            raise ServiceError(f"Kafka at {self.bootstrap_servers} did not take {len(failed)} record(s), the first "
                               f"for topic {topic!r}: {error}. {_HINT}")

    def read(self, topic: str, timeout_s: float = 10.0) -> list[Record]:
        with kafka.translate_errors(f"reading topic {topic!r}", self.bootstrap_servers, _HINT):
            records = kafka.read_topic(self.bootstrap_servers, topic, timeout_s)
        return [_record(record) for record in records]

    def committed(self, group: str, topic: str, partition: int = 0) -> int | None:
        with kafka.translate_errors(f"reading group {group!r}'s offsets", self.bootstrap_servers, _HINT):
            return kafka.committed_offsets(self.bootstrap_servers, group).get((topic, partition))

    def _close(self) -> None:
        if self._producer is not None:
            try:
                self.flush()
            finally:
                self._producer.close()
                self._producer = None

    def _open(self, topics: list[str], group: str, start: str, config: ReceiveConfig) -> Source:
        options = {"auto_offset_reset": start, "max_poll_records": config.max_batch, **self.consumer_options}
        return _KafkaSource(self.bootstrap_servers, topics, group, options)


def _record(record) -> Record:
    return Record(record.topic, record.partition, record.offset, record.value, tuple(record.headers or ()))


class _KafkaSource(Source):
    """A consumer owned by its own thread; the subscription talks to it through two queues."""

    def __init__(self, servers: str, topics: list[str], group: str, options: dict):
        self.stats = SubscriptionStats()
        self._servers, self._group = servers, group
        self._batches: queue.Queue[list[Record]] = queue.Queue(maxsize=1)
        self._commands: queue.Queue[tuple] = queue.Queue()
        self._lock = threading.Lock()
        self._revoked: list[tuple[str, int]] = []
        self._unsent: dict[tuple[str, int], int] = {}  # commits that failed, retried while owned
        self._holding = self._closing = False
        self._error: BaseException | None = None
        with kafka.translate_errors(f"joining consumer group {group!r}", servers, _HINT):
            self._consumer = kafka.group_consumer(servers, group, topics, self._on_assigned, self._on_revoked,
                                                  **options)
        self._thread = threading.Thread(target=self._run, name=f"h3spark-kafka-{group}", daemon=True)
        self._thread.start()

    # the subscription's side
    def fetch(self, timeout_s: float) -> list[Record]:
        self._raise_if_dead()
        try:
            return self._batches.get(timeout=timeout_s)
        except queue.Empty:
            self._raise_if_dead()
            return []

    def release(self, commits: dict[tuple[str, int], int], rewinds: dict[tuple[str, int], int]) -> None:
        self._commands.put(("release", commits, rewinds))

    def commit(self, commits: dict[tuple[str, int], int]) -> None:
        self._commands.put(("commit", commits))

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._commands.put(("seek", {(topic, partition): offset}))

    def revoked(self) -> list[tuple[str, int]]:
        with self._lock:
            taken, self._revoked = self._revoked, []
        return taken

    def close(self) -> None:
        self._commands.put(("close",))
        self._thread.join(CLOSE_TIMEOUT_S)
        if self._thread.is_alive():
            logger.warning("the consumer thread did not stop within %s s group=%s", CLOSE_TIMEOUT_S, self._group)
        self._raise_if_dead()

    def _raise_if_dead(self) -> None:
        if self._error is not None:
            raise ServiceError(f"the Kafka consumer of group {self._group!r} at {self._servers} stopped: "
                               f"{type(self._error).__name__}: {self._error}. {_HINT}")

    # called by kafka-python when the group rebalances
    def _on_assigned(self, partitions: list[tuple[str, int]]) -> None:
        if partitions:  # an empty one comes first when the topic's metadata is not in yet
            with self._lock:
                self.stats.assignments += 1

    def _on_revoked(self, partitions: list[tuple[str, int]]) -> None:
        with self._lock:
            self._revoked += partitions
            for partition in partitions:  # its new owner reads from the last successful commit
                self._unsent.pop(partition, None)

    # the consumer's thread
    def _run(self) -> None:
        try:
            while not self._closing:
                # holding a batch, wait here for its release: a poll with every partition paused would sleep
                self._obey_commands(wait_s=POLL_S if self._holding else 0.0)
                if not self._closing:
                    self._poll()
        except BaseException as error:  # kept and raised to the subscription by fetch/close
            self._error = error
            logger.error("the Kafka consumer thread failed: %s group=%s", error, self._group)
        finally:
            self._finish()

    def _obey_commands(self, wait_s: float) -> None:
        """Carry out the subscription's commands; wait up to ``wait_s`` for the first."""
        while True:
            try:
                command = self._commands.get(timeout=wait_s) if wait_s > 0 else self._commands.get_nowait()
            except queue.Empty:
                return
            wait_s = 0.0
            if command[0] == "release":
                with self._lock:
                    self._unsent.update(command[1])
                self._seek(command[2])
                self._holding = False
                kafka.resume_all(self._consumer)
            elif command[0] == "commit":
                with self._lock:
                    self._unsent.update(command[1])
            elif command[0] == "seek":
                self._seek(command[1])
            else:
                self._closing = True

    def _seek(self, offsets: dict[tuple[str, int], int]) -> None:
        for partition, offset in offsets.items():
            kafka.seek(self._consumer, partition, offset)

    def _poll(self) -> None:
        try:
            with kafka.translate_errors(f"consumer group {self._group!r}", self._servers, _HINT):
                self._commit()
                # while holding, only keep the membership alive (kafka-python sleeps in a poll of paused partitions)
                fetched = self._consumer.poll(timeout_ms=0 if self._holding else int(POLL_S * 1000))
        except ServiceError as error:  # the broker is away: the client reconnects, we retry
            logger.warning("%s; retrying in %s s group=%s", error, RETRY_S, self._group)
            time.sleep(RETRY_S)
            return
        records = [_record(record) for batch in fetched.values() for record in batch]
        if not records:
            return
        if self._holding:  # from partitions assigned while paused: read them again after the release
            self._seek({(r.topic, r.partition): r.offset for r in reversed(records)})
            kafka.pause_all(self._consumer)
            return
        kafka.pause_all(self._consumer)
        self._holding = True
        self._batches.put(records)

    def _commit(self) -> None:
        with self._lock:
            offsets = dict(self._unsent)
        if offsets:
            kafka.commit(self._consumer, offsets, COMMIT_TIMEOUT_S)
            with self._lock:
                for partition, offset in offsets.items():
                    if self._unsent.get(partition) == offset:
                        del self._unsent[partition]

    def _finish(self) -> None:
        try:
            with kafka.translate_errors(f"consumer group {self._group!r}", self._servers, _HINT):
                self._commit()
        except ServiceError as error:
            logger.warning("leaving with offsets not committed (they will be delivered again): %s group=%s",
                           error, self._group)
        finally:
            self._consumer.close(autocommit=False)
