"""Predictions over request and reply topics: an actor that answers ``features`` messages.

    >>> responder = PredictionResponder(KafkaTransport("127.0.0.1:9092"), model, "digits",
    ...                                 requests="digits.requests", replies="digits.replies").start()
    >>> responder.run(stop)                       # until stop (a threading.Event) is set
    >>> # a client, on any transport that reaches the same topics:
    >>> replies = ReplyWaiter(transport, "digits.replies")
    >>> request_id = send_request(transport, "digits.requests", features, sender="client-1")
    >>> replies.wait(request_id, timeout_s=30).arrays["probabilities"]

A request is a ``features`` envelope (``features``: (N, *input_shape) or (N, features)); its reply, on
the reply topic (or the one the request's ``meta.reply_to`` names), is a ``predictions`` envelope
whose ``meta.request_id`` is the request's message id, with ``probabilities`` (float32, N x classes)
and ``label`` (int64, N), stamped with the model's version. A request the model cannot take gets
a reply with ``meta.error`` saying why and no arrays. The transport's promises hold (at-least-once
with deduplication by message id within a group), so a client may see a reply twice after a
restart; the request id tells them apart.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from h3spark.actors import Delivery, Envelope, Transport
from h3spark.errors import DataError
from h3spark.serve._model import ServedModel

logger = logging.getLogger(__name__)


class PredictionResponder:
    """Answers the ``features`` envelopes of ``requests`` with ``predictions`` envelopes on ``replies``."""

    def __init__(self, transport: Transport, model: ServedModel, name: str, requests: str, replies: str,
                 group: str | None = None):
        self.transport, self.model, self.name = transport, model, name
        self.requests, self.replies = requests, replies
        self.group = group or f"h3spark-serve-{name}"
        self.answered = self.refused = 0
        self._subscription = None

    def start(self) -> "PredictionResponder":
        """Join the group on the request topic (a new group starts at its earliest message)."""
        self.transport.ensure_topics([self.replies])
        self._subscription = self.transport.subscribe([self.requests], self.group, self.handle)
        logger.info("answering requests=%s replies=%s model=%s", self.requests, self.replies, self.name)
        return self

    def poll(self, timeout_s: float = 0.5) -> int:
        return self._subscription.poll(timeout_s)

    def run(self, stop: threading.Event, timeout_s: float = 0.5) -> None:
        """Answer requests until ``stop`` is set, then close the subscription (committing what was answered)."""
        try:
            while not stop.is_set():
                self.poll(timeout_s)
        finally:
            self._subscription.close()

    def handle(self, envelope: Envelope, delivery: Delivery) -> None:
        version = self.model.version
        reply_to = envelope.meta.get("reply_to") or self.replies
        meta = {"request_id": envelope.id, "model": self.name}
        try:
            probabilities = self.model.predict(self._features(envelope))
        except DataError as error:
            self.refused += 1
            logger.warning("refused request %s from %s: %s", envelope.id, envelope.sender, error)
            reply = Envelope("predictions", self.name, model_version=version, computed_with=version,
                             meta={**meta, "error": str(error)})
        else:
            self.answered += 1
            reply = Envelope("predictions", self.name, model_version=version, computed_with=version, meta=meta,
                             arrays={"probabilities": probabilities, "label": self.model.labels(probabilities)})
        self.transport.publish(reply_to, reply, key=envelope.sender.encode())
        self.transport.flush()

    def _features(self, envelope: Envelope) -> np.ndarray:
        if envelope.kind != "features" or "features" not in envelope.arrays:
            raise DataError(f"a request is a features message with a 'features' array; got a {envelope.kind} message "
                            f"with arrays {sorted(envelope.arrays)}.")
        features = np.asarray(envelope.arrays["features"])
        if features.ndim < 2 or int(np.prod(features.shape[1:])) != self.model.features:
            raise DataError(f"'features' has shape {list(features.shape)}; model {self.name!r} takes "
                            f"{self.model.shapes()}.")
        return features.astype(np.float32, copy=False)


def send_request(transport: Transport, requests: str, features: np.ndarray, sender: str,
                 reply_to: str | None = None) -> str:
    """Publish a request for predictions of ``features``; returns its message id (the reply's request_id)."""
    meta = {"reply_to": reply_to} if reply_to else {}
    envelope = Envelope("features", sender, arrays={"features": np.ascontiguousarray(features, np.float32)}, meta=meta)
    transport.publish(requests, envelope)
    transport.flush()
    return envelope.id


class ReplyWaiter:
    """Collects the replies of a reply topic by request id (one group per waiter, from the earliest reply)."""

    def __init__(self, transport: Transport, replies: str, group: str | None = None):
        self._replies: dict[str, Envelope] = {}
        group = group or f"h3spark-replies-{id(self):x}-{time.time_ns()}"
        self._subscription = transport.subscribe([replies], group, self._keep)

    def _keep(self, envelope: Envelope, delivery: Delivery) -> None:
        request_id = envelope.meta.get("request_id")
        if isinstance(request_id, str):
            self._replies[request_id] = envelope

    def wait(self, request_id: str, timeout_s: float = 30.0) -> Envelope:
        """The reply to ``request_id``; a DataError when none came within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while request_id not in self._replies:
            if time.monotonic() > deadline:
                raise DataError(f"no reply to request {request_id} within {timeout_s:g} s; is a responder running "
                                "on the request topic?")
            self._subscription.poll(0.2)
        return self._replies.pop(request_id)

    def close(self) -> None:
        self._subscription.close()
