"""The hub: what every page's connection shares, on the server's event loop.

It keeps each actor's curve (metric points from reports and validation results), the network's
states, the pending draw-a-digit requests, and the Downpour master; :meth:`Hub.tick` (every
``TICK_S``) scores the master, publishes its report and expires requests that got no answer.
Events from the actor network arrive on the bridge's thread and are handed to the loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from h3spark.config import WebConfig
from h3spark.web._bridge import ActorBridge, Event
from h3spark.web._downpour import DownpourMaster

logger = logging.getLogger(__name__)

TICK_S = 0.05
HISTORY_POINTS = 2000   # points kept per actor for pages that connect later
HEARTBEAT_S = 5.0       # the master reports at least this often, changed or not
DIGIT_PIXELS = 64       # an 8x8 digit, as scikit-learn's


@dataclass
class Pending:
    """A draw-a-digit request waiting for the actors' predictions."""

    session: object
    client_id: str
    started_s: float
    answered: set = field(default_factory=set)


class Hub:
    """Sessions, curves, pending requests, the bridge and the master."""

    def __init__(self, config: WebConfig, network: str, graph: dict, bridge: ActorBridge | None,
                 master: DownpourMaster | None, clock=time.monotonic):
        self.config, self.network, self.graph, self.bridge, self.master = config, network, graph, bridge, master
        self._clock = clock
        self.started_s = clock()
        self.sessions: set = set()
        self.history: dict[str, collections.deque] = {}
        self.states: dict[str, dict] = {}
        self.pending: dict[str, Pending] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._evaluated_s = -float("inf")
        self._reported = (None, -float("inf"))  # (what was reported, when)

    # --- events from the actor network (on the loop) ----------------------------------------

    def from_thread(self, event: Event) -> None:
        """The bridge's callback: hand ``event`` to the loop."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.on_event, event)

    def on_event(self, event: Event) -> None:
        kind = event["kind"]
        if kind == "prediction":
            self._answer(event)
            return
        now = round(self._clock() - self.started_s, 3)
        if kind == "report":
            report = event["report"]
            scores = report.get("evaluated") or report.get("predicted") or {}
            point = {"actor": event["actor"], "t": now, "step": report.get("step"), "loss": report.get("loss"),
                     "accuracy": scores.get("accuracy"), "kind": "report"}
            self.states[event["actor"]] = {key: report.get(key) for key in ("state", "step", "handled", "error")}
            self.broadcast_state("actors", dict(self.states))
        else:
            point = {"actor": event["actor"], "t": now, "step": event.get("version"), "loss": event.get("loss"),
                     "accuracy": event.get("accuracy"), "kind": "validation", "by": event.get("by")}
        self.history.setdefault(point["actor"], collections.deque(maxlen=HISTORY_POINTS)).append(point)
        for session in list(self.sessions):
            session.outbox.add_point(point)
            session.wake()

    def broadcast_state(self, key: str, value: object) -> None:
        for session in list(self.sessions):
            session.outbox.set_state(key, value)
            session.wake()

    # --- draw-a-digit -------------------------------------------------------------------------

    def predict(self, session, client_id: str, pixels: np.ndarray) -> list[dict]:
        """Send ``pixels`` to the actors; the master's own answer (if any) comes back at once."""
        started = self._clock()
        request_id = self.bridge.request_prediction(pixels) if self.bridge is not None else None
        if request_id is not None:
            self.pending[request_id] = Pending(session, client_id, started)
        answers = []
        if self.master is not None and self.master.data is not None:
            features, _, refused = self.master.data.preprocess(pixels.reshape(1, -1), None)
            if len(features):
                probabilities, version = self.master.predict(features)
                answers.append(self._prediction_message(client_id, self.master.config.name, probabilities[0],
                                                        version, started))
            else:
                logger.warning("the master's pipeline refused a drawn digit: %s", "; ".join(refused))
        return answers

    def _answer(self, event: Event) -> None:
        pending = self.pending.get(event["request_id"])
        if pending is None or event["actor"] in pending.answered or pending.session not in self.sessions:
            return
        pending.answered.add(event["actor"])
        message = self._prediction_message(pending.client_id, event["actor"], event["probabilities"],
                                           event["version"], pending.started_s)
        pending.session.send_later(message)

    def _prediction_message(self, client_id: str, actor: str, probabilities, version, started_s: float) -> dict:
        probabilities = [round(float(p), 6) for p in probabilities]
        return {"type": "prediction", "id": client_id, "actor": actor, "probabilities": probabilities,
                "label": int(np.argmax(probabilities)), "version": version,
                "ms": round(1000 * (self._clock() - started_s), 3)}

    # --- the periodic work ----------------------------------------------------------------------

    def tick(self) -> None:
        now = self._clock()
        for request_id in [key for key, p in self.pending.items() if now - p.started_s > self.config.request_timeout_s]:
            del self.pending[request_id]
        if self.master is None:
            return
        if now - self._evaluated_s >= self.master.config.eval_every_s:
            self._evaluated_s = now
            self._report(now)

    def _report(self, now: float) -> None:
        master = self.master
        key = (master.version, tuple(sorted(master.workers)), master.refused)
        if key == self._reported[0] and now - self._reported[1] < HEARTBEAT_S:
            return
        if master.scores is None or master.scores["version"] != master.version:
            master.evaluate()
        self._reported = (key, now)
        status = master.status()
        self.broadcast_state("downpour", {key: status[key] for key in ("step", "applied", "refused", "samples",
                                                                       "workers", "evaluated")})
        if self.bridge is not None:
            self.bridge.publish_report(status)

    # --- what a page is told when it says hello ---------------------------------------------------

    def raw_width(self) -> int:
        """Values in a drawn digit: the master's raw rows', else an 8x8 image as scikit-learn's digits."""
        master = self.master
        return master.data.raw_width if master is not None and master.data is not None else DIGIT_PIXELS

    def predictors(self) -> list[str]:
        """Who answers a drawn digit: the actors predicting on the predict topic, and the master."""
        topic = self.config.predict_topic
        names = [name for name, actor in self.graph.get("actors", {}).items() if actor["inputs"].get(topic) == "predict"]
        return names + ([self.master.config.name] if self.master is not None and self.master.data is not None else [])

    def welcome(self, session) -> dict:
        config, master = self.config, self.master
        downpour = None if master is None else {
            "name": master.config.name, "spec": master.spec.to_dict(), "layout": master.layout.to_json(),
            "parameters": master.layout.size, "features": master.spec.features, "classes": master.spec.classes,
            "version": master.version, "settings": master.settings(), "shards": master.data.shards if master.data else 0}
        return {"type": "welcome", "authenticated": session.authenticated, "role": session.role,
                "network": self.network, "graph": self.graph, "predictors": self.predictors(),
                "pixels": self.raw_width(), "actors": dict(self.states), "downpour": downpour,
                "history": {actor: list(points) for actor, points in self.history.items()},
                "limits": {"max_message_bytes": config.max_message_bytes, "max_text_bytes": config.max_text_bytes,
                           "max_messages_per_s": config.max_messages_per_s, "burst": config.burst,
                           "push_hz": config.push_hz}}
