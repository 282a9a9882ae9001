"""The metric channel over Kafka: trials publish reports, the driver answers stop or go.

A trial's ``report`` sends ``{"run_id", "trial_id", "step", "metrics", "score"}`` as JSON to
``topic`` and waits (up to ``reply_timeout_s``) for the driver's answer on ``topic.control``,
so a stop decision reaches the trial in the reply to the report that triggered it, exactly
as over the driver's socket. kafka-python is imported lazily.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from h3spark.errors import ServiceError, missing_dependency

logger = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 10.0


def _kafka():
    try:
        import kafka
    except ImportError:
        raise missing_dependency("kafka-python", "The Kafka metric channel") from None
    return kafka


def _decode(raw: bytes) -> dict | None:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def ensure_topics(bootstrap_servers: str, topics: list[str]) -> None:
    kafka = _kafka()
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, num_partitions=1, replication_factor=1) for name in topics if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


class KafkaChannel:
    """The trial's side: produce a report, wait for the answer to that (trial, step)."""

    def __init__(self, settings: dict):
        self._settings = settings
        self._producer = self._consumer = None

    def _connect(self) -> None:
        kafka = _kafka()
        servers = self._settings["bootstrap_servers"]
        self._producer = kafka.KafkaProducer(bootstrap_servers=servers, linger_ms=0)
        self._consumer = kafka.KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
        partition = kafka.TopicPartition(self._settings["topic"] + ".control", 0)
        self._consumer.assign([partition])
        self._consumer.seek_to_end(partition)
        self._consumer.position(partition)  # fix the offset before the first report goes out

    def report(self, trial_id: int, step: int, metrics: dict, score) -> bool:
        from h3spark.tune._wire import encode

        if self._producer is None:
            self._connect()
        message = {"run_id": self._settings["run_id"], "trial_id": trial_id, "step": step, "metrics": metrics, "score": score}
        self._producer.send(self._settings["topic"], encode(message))
        self._producer.flush()
        return self._await_reply(trial_id, step)

    def _await_reply(self, trial_id: int, step: int) -> bool:
        deadline = time.monotonic() + self._settings.get("reply_timeout_s", REPLY_TIMEOUT_S)
        while time.monotonic() < deadline:
            for records in self._consumer.poll(timeout_ms=100).values():
                for record in records:
                    reply = _decode(record.value)
                    if reply and reply.get("run_id") == self._settings["run_id"] and \
                            (reply.get("trial_id"), reply.get("step")) == (trial_id, step):
                        return bool(reply.get("stop"))
        logger.warning("no stop/go answer over Kafka within the timeout; going on trial=%s step=%s", trial_id, step)
        return False


class KafkaStopBridge:
    """The driver's side: a thread that reads reports and answers each through the dispatcher's rule."""

    def __init__(self, settings: dict, dispatcher):
        kafka = _kafka()
        self._settings, self._dispatcher = settings, dispatcher
        servers = settings["bootstrap_servers"]
        try:
            ensure_topics(servers, [settings["topic"], settings["topic"] + ".control"])
            self._producer = kafka.KafkaProducer(bootstrap_servers=servers, linger_ms=0)
            self._consumer = kafka.KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
        except kafka.errors.KafkaError as error:
            raise ServiceError(f"cannot reach Kafka at {servers} for the metric channel: {error}. Start it with "
                               "'h3spark services up kafka', or remove experiment.kafka.") from None
        partition = kafka.TopicPartition(settings["topic"], 0)
        self._consumer.assign([partition])
        self._consumer.seek_to_end(partition)
        self._consumer.position(partition)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="h3spark-kafka-bridge", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from h3spark.tune._wire import encode

        while not self._stop.is_set():
            for records in self._consumer.poll(timeout_ms=100).values():
                for record in records:
                    report = _decode(record.value)
                    if not report or report.get("run_id") != self._settings["run_id"]:
                        continue
                    stop = self._dispatcher.answer_report(report)
                    reply = {"run_id": report["run_id"], "trial_id": report["trial_id"], "step": report["step"], "stop": stop}
                    self._producer.send(self._settings["topic"] + ".control", encode(reply))
                    self._producer.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
        self._producer.close()
