"""The bridge's side on the actor network: it is an actor that follows reports, predictions and validation
results, and passes inputs from pages to the actors.

    >>> bridge = ActorBridge(transport, "web-digits", section=config.actors, predict_topic="web.draw")
    >>> bridge.start(events.put)                   # events: {"kind": "report" | "prediction" | "validation", ...}
    >>> request_id = bridge.request_prediction(pixels)   # a raw record on the predict topic
    >>> bridge.stop()

It follows ``NETWORK.status`` (each actor's reports), and the predictions and validation topics
(``follow``; by default every ``outputs.predictions`` and ``outputs.validation`` of the section),
from their newest records, in a consumer group of its own (``NETWORK.web.HEX``) on a thread of its
own. A drawn digit travels as a ``raw`` message (one JSON record, ``{"features": [...]}``) so each
actor applies its own pipeline; an actor answers with predictions whose ``meta.request_id`` is
that message's id.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from typing import Callable

import numpy as np

from h3spark.actors import Delivery, Envelope, Transport, raw_envelope, status_topic
from h3spark.actors._control import REPORT, report
from h3spark.config import ActorsConfig

logger = logging.getLogger(__name__)

VALIDATION = "validation"  # the op of a sentinel's results (h3spark.actors._sentinel)
Event = dict
MAX_CLASSES_SENT = 1000


def followed_topics(section: ActorsConfig | None, follow: list[str] | None) -> list[str]:
    """The predictions and validation topics the bridge follows."""
    if follow is not None:
        return list(dict.fromkeys(follow))
    if section is None:
        return []
    topics = [topic for actor in section.actors.values()
              for topic in (actor.outputs.predictions, actor.outputs.validation) if topic is not None]
    return list(dict.fromkeys(topics))


def network_graph(section: ActorsConfig | None) -> dict:
    """The network's actors and producers with their topics, for the page."""
    if section is None:
        return {"actors": {}, "producers": {}}
    actors = {name: {"inputs": dict(actor.inputs),
                     "outputs": {key: topic for key, topic in actor.outputs.model_dump().items() if topic},
                     "model": actor.model.engine}
              for name, actor in section.actors.items()}
    producers = {name: {"topic": producer.topic} for name, producer in section.producers.items()}
    return {"actors": actors, "producers": producers, "transport": section.transport}


class ActorBridge:
    """Follows the network's topics on a thread and hands each event to ``on_event``."""

    def __init__(self, transport: Transport, network: str, section: ActorsConfig | None = None,
                 predict_topic: str | None = None, follow: list[str] | None = None, name: str = "web"):
        self.transport, self.network, self.section = transport, network, section
        self.predict_topic, self.name = predict_topic, name
        self.topics = followed_topics(section, follow)
        self.group = f"{network}.{name}.{secrets.token_hex(4)}"
        self.received = 0
        self._subscription = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_event: Callable[[Event], None] = lambda event: None

    def start(self, on_event: Callable[[Event], None]) -> None:
        """Subscribe (from the newest records) and follow on a thread."""
        self._on_event = on_event
        topics = [status_topic(self.network), *self.topics]
        if self.predict_topic:
            self.transport.ensure_topics([self.predict_topic])
        self._subscription = self.transport.subscribe(topics, self.group, self._handle, start="latest")
        self._thread = threading.Thread(target=self._follow, name=f"h3spark-web-{self.network}", daemon=True)
        self._thread.start()
        logger.info("following %s group=%s network=%s", ", ".join(topics), self.group, self.network)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._subscription.poll(timeout_s=0.2)
            except Exception:  # noqa: BLE001 - one bad message must not end the bridge; its reason is logged
                logger.exception("the bridge could not handle a message network=%s", self.network)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._subscription is not None:
            self._subscription.close()

    def _handle(self, envelope: Envelope, delivery: Delivery) -> None:
        self.received += 1
        meta = envelope.meta
        if envelope.kind == "control" and meta.get("op") == REPORT and isinstance(meta.get("actor"), str):
            self._on_event({"kind": "report", "actor": meta["actor"], "report": dict(meta)})
        elif envelope.kind == "control" and meta.get("op") == VALIDATION:
            self._on_event({"kind": "validation", "actor": str(meta.get("of")), "by": envelope.sender,
                            "version": meta.get("model_version"), "loss": meta.get("loss"),
                            "accuracy": meta.get("accuracy")})
        elif envelope.kind == "predictions" and "probabilities" in envelope.arrays:
            self._prediction(envelope)

    def _prediction(self, envelope: Envelope) -> None:
        request_id = envelope.meta.get("request_id")
        if not isinstance(request_id, str):
            return  # predictions of the actors' own streams; the page asks only for its own
        probabilities = np.asarray(envelope.arrays["probabilities"], dtype=np.float64)
        if probabilities.ndim != 2 or not len(probabilities) or probabilities.shape[1] > MAX_CLASSES_SENT:
            return
        row = probabilities[0]
        self._on_event({"kind": "prediction", "request_id": request_id, "actor": envelope.sender,
                        "probabilities": [round(float(p), 6) for p in row], "label": int(np.argmax(row)),
                        "version": envelope.computed_with})

    def request_prediction(self, pixels: np.ndarray) -> str | None:
        """Send one raw record (``{"features": pixels}``) to the predict topic; its message id (None without one)."""
        if not self.predict_topic:
            return None
        record = json.dumps({"features": [float(value) for value in np.asarray(pixels).reshape(-1)]})
        envelope = raw_envelope(self.name, [record], "json", meta={"reply": True})
        self.transport.publish(self.predict_topic, envelope)
        self.transport.flush()
        return envelope.id

    def publish_report(self, status: dict) -> None:
        """Publish a report on the network's status topic (the Downpour master's, as an actor's)."""
        self.transport.publish(status_topic(self.network), report(status["actor"], status, status.get("step")))
