"""The metric channel over Kafka: trials publish reports, the driver answers stop or go.

A trial's ``report`` sends ``{"run_id", "op": "report", "trial_id", "step", "metrics", "score"}``
as JSON to ``topic`` and waits (up to ``reply_timeout_s``) for the driver's answer on
``topic.control``, so a stop decision reaches the trial in the reply to the report that
triggered it, exactly as over the driver's socket. The driver checks each report against
the same schema as the socket's; nothing malformed vanishes: every record that cannot be
used is logged with the trial and what was wrong, and the driver's count goes into the
experiment's summary. Kafka clients come from :mod:`h3spark.transport.kafka`.
"""

from __future__ import annotations

import logging
import threading
import time

from h3spark.errors import JobFailedError
from h3spark.transport import kafka
from h3spark.tune._wire import decode, encode

logger = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 10.0
_HINT = "Start it with 'h3spark services up kafka', or remove experiment.kafka."


def _record_json(raw: bytes, where: str) -> tuple[dict | None, str | None]:
    """The record as a dict, or (None, what is wrong with it)."""
    try:
        value = decode(raw)
    except ValueError as error:
        return None, f"not JSON ({error}) on {where}"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not an object, on {where}"
    return value, None


class KafkaChannel:
    """The trial's side: produce a report, wait for the answer to that (trial, step)."""

    def __init__(self, settings: dict):
        self._settings = settings
        self._control = settings["topic"] + ".control"
        self._producer = self._consumer = None

    def _connect(self) -> None:
        servers = self._settings["bootstrap_servers"]
        with kafka.translate_errors("the metric channel", servers, _HINT):
            self._producer = kafka.producer(servers)
            self._consumer = kafka.consumer_from_end(servers, self._control)

    def report(self, trial_id: int, step: int, metrics: dict, score) -> bool:
        if self._producer is None:
            self._connect()
        message = {"run_id": self._settings["run_id"], "op": "report", "trial_id": trial_id, "step": step,
                   "metrics": metrics, "score": score}
        kafka.send(self._producer, self._settings["topic"], encode(message))
        return self._await_reply(trial_id, step)

    def _await_reply(self, trial_id: int, step: int) -> bool:
        deadline = time.monotonic() + self._settings.get("reply_timeout_s", REPLY_TIMEOUT_S)
        while time.monotonic() < deadline:
            for records in self._consumer.poll(timeout_ms=100).values():
                for record in records:
                    stop = stop_in_reply(record.value, self._settings["run_id"], trial_id, step, self._control)
                    if stop is not None:
                        return stop
        logger.warning("no stop/go answer over Kafka within the timeout; going on trial=%s step=%s", trial_id, step)
        return False


def stop_in_reply(raw: bytes, run_id: str, trial_id: int, step: int, topic: str) -> bool | None:
    """stop/go if ``raw`` answers this run's (trial, step); None for other runs' and trials' replies and
    for a malformed one (logged); a refusal raises JobFailedError."""
    reply, problem = _record_json(raw, topic)
    if reply is None:
        logger.warning("dropped a reply: %s trial=%s step=%s", problem, trial_id, step)
        return None
    if reply.get("run_id") != run_id or (reply.get("trial_id"), reply.get("step")) != (trial_id, step):
        return None
    if "error" in reply:
        raise JobFailedError(f"the experiment driver refused the report of trial {trial_id} at step {step}: "
                             f"{reply['error']}")
    if not isinstance(reply.get("stop"), bool):
        logger.warning("dropped a reply whose 'stop' is %s, not true or false, on %s trial=%s step=%s",
                       repr(reply.get("stop"))[:40], topic, trial_id, step)
        return None
    return reply["stop"]


class KafkaStopBridge:
    """The driver's side: a thread that reads reports and answers each through the dispatcher's rule."""

    def __init__(self, settings: dict, dispatcher):
        self._settings, self._dispatcher = settings, dispatcher
        self._control = settings["topic"] + ".control"
        servers = settings["bootstrap_servers"]
        with kafka.translate_errors("the metric channel", servers, _HINT):
            kafka.ensure_topics(servers, [settings["topic"], self._control])
            self._producer = kafka.producer(servers)
            self._consumer = kafka.consumer_from_end(servers, settings["topic"])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="h3spark-kafka-bridge", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for records in self._consumer.poll(timeout_ms=100).values():
                for record in records:
                    try:
                        reply = answer_record(record.value, self._settings["run_id"], self._dispatcher,
                                              self._settings["topic"])
                        if reply is not None:
                            kafka.send(self._producer, self._control, encode(reply))
                    except Exception:  # one record or one failed send must not end the bridge: log it, go on
                        logger.exception("could not answer a report on %s offset=%s", self._settings["topic"],
                                         record.offset)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
        self._producer.close()


def answer_record(raw: bytes, run_id: str, dispatcher, topic: str) -> dict | None:
    """The reply to one record of the report topic, or None (another run's report, or one that
    names no trial and step to answer). Malformed records are refused through the dispatcher,
    which logs and counts them."""
    report, problem = _record_json(raw, topic)
    if report is None:
        dispatcher.reject(f"a record that is {problem}")
        return None
    their_run = report.pop("run_id", None)
    if not isinstance(their_run, str):
        dispatcher.reject(f"a record without a run_id on {topic} trial={_field(report, 'trial_id')}")
        return None
    if their_run != run_id:
        return None  # another experiment's report on a shared topic
    trial_id, step = report.get("trial_id"), report.get("step")
    reply = dispatcher.answer_report(report, f"a report on {topic} trial={_field(report, 'trial_id')} "
                                             f"step={_field(report, 'step')}")
    if type(trial_id) is not int or type(step) is not int:
        return None  # the trial waiting for it cannot be told apart; it goes on after reply_timeout_s
    return {"run_id": run_id, "trial_id": trial_id, "step": step, **reply}


def _field(record: dict, name: str) -> str:
    return repr(record.get(name))[:40]
