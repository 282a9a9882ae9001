"""The Actor: a model with its own pipeline, reading topics and publishing to others, one handler per kind.

    >>> actor = Actor.from_config("learner", config, transport, workdir="/tmp/w", network="demo")
    >>> actor.run()                  # until stopped, or its inputs ended (stop_at_end), or max_steps

Each input topic is used to ``train``, ``predict`` or ``evaluate``; a message marked
``split: holdout`` is evaluated whatever its topic's use. By kind:

- ``raw`` records go through the actor's fitted pipeline (:class:`Intake`; bad rows to the
  quarantine), ``features`` batches as they are; then training assembles minibatches with the
  feed's StreamBatcher and takes one step per minibatch, prediction publishes ``predictions``
  (``probabilities`` = softmax(logits / temperature), and ``logits``; stamped with the model version
  used, ``computed_with``), evaluation adds to the held-out scores (and an actor that publishes
  predictions publishes those of the rows it evaluates too, marked ``split: holdout``).
- ``predictions`` from another actor: :attr:`Actor.learn_from_predictions` (the distillation hook;
  by default, on a topic used to train, the teacher's arg-max on the features the message carries;
  with ``distill:``, Hinton et al.'s loss on the soft targets, see :mod:`h3spark.actors._distill`).
- ``parameters``: loaded by layer name (``accept_parameters``), optionally frozen (transfer).
- ``control``: start/resume, pause, stop, snapshot (from ``NETWORK.control``), ``end`` on a data topic.

Handling is idempotent by message id (the transport skips ids its group handled). A message its
handler refuses (a DataError) is logged and counted as rejected, and the actor goes on.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable

import numpy as np
import pyarrow as pa

from h3spark.actors import _control as control
from h3spark.actors._actor_io import ActorIO, build_actor
from h3spark.actors._batches import OnlineBatches
from h3spark.actors._distill import distill_from_predictions
from h3spark.actors._envelope import Envelope
from h3spark.actors._intake import Intake
from h3spark.actors._records import arrow_batch, batch_arrays, records_table
from h3spark.actors._source import Delivery
from h3spark.actors._stats import ActorStats
from h3spark.actors._transport import Transport
from h3spark.config import ActorConfig
from h3spark.errors import DataError
from h3spark.train.engines.model import Model, softmax

logger = logging.getLogger(__name__)

#: learn_from_predictions(actor, envelope, use): what an actor does with another actor's predictions.
PredictionsHook = Callable[["Actor", Envelope, str], None]


class Actor(ActorIO):
    """One actor. Build it with :meth:`from_config` (restores its last snapshot), or directly."""

    def __init__(self, name: str, config: ActorConfig, transport: Transport, model: Model,
                 intake: Intake | None = None, network: str = "h3spark", home: str | None = None,
                 progress_s: float = 5.0):
        super().__init__(name, config, transport, model, network, home, progress_s)
        self.intake = intake
        self.stats = ActorStats()
        self.batches = OnlineBatches(config.training.batch_size, (model.spec.features,))
        self.learn_from_predictions: PredictionsHook = distill_from_predictions if config.distill else hard_targets
        self.paused = False
        self.stopping = False
        self.state = "starting"
        self.error: str | None = None
        self._senders: dict[str, set[str]] = {}
        self._ended: dict[str, set[str]] = {}
        self.replying_to: str | None = None  # a message asking for a reply: its predictions carry meta.request_id

    @classmethod
    def from_config(cls, name: str, config: ActorConfig, transport: Transport, workdir: str,
                    network: str = "h3spark", home: str | None = None, progress_s: float = 5.0) -> "Actor":
        """The actor ``config`` describes; with a snapshot under ``home``, restored from the newest one."""
        return build_actor(cls, name, config, transport, workdir, network, home, progress_s)

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> dict:
        """Handle messages until stopped; the final report."""
        self.open()
        try:
            while not self.stopping:
                self.poll()
        except BaseException as error:
            self.state, self.error = "failed", f"{type(error).__name__}: {error}"
            raise
        finally:
            self.close()
        return self.status()

    def poll(self, timeout_s: float = 0.2) -> int:
        """Handle what arrives within about ``timeout_s`` (commands first); the number of messages handled."""
        handled = self._poll(self.control_subscription, timeout_s if self.paused or not self.data else 0.0)
        if not self.paused and not self.stopping and self.data is not None:
            handled += self._poll(self.data, timeout_s)
        self.maybe_report()
        return handled

    def _poll(self, subscription, timeout_s: float) -> int:
        handled_before = self.stats.handled
        try:
            subscription.poll(timeout_s=timeout_s)
        except _Stopping:  # the messages after the one that stopped the actor stay for its next run
            pass
        return self.stats.handled - handled_before

    def handle(self, envelope: Envelope, delivery: Delivery) -> None:
        """The transport's handler: dispatch by kind; a DataError refuses the message, logged and counted."""
        if self.stopping:
            raise _Stopping()
        use = "evaluate" if envelope.meta.get("split") == "holdout" else self.config.inputs.get(delivery.topic, "train")
        self.replying_to = envelope.id if envelope.meta.get("reply") is True else None
        try:
            getattr(self, f"on_{envelope.kind}")(envelope, delivery, use)
        except DataError as error:
            self.stats.rejected += 1
            logger.warning("refused a %s message: %s actor=%s sender=%s id=%s", envelope.kind, error, self.name,
                           envelope.sender, envelope.id)
        finally:
            self.replying_to = None
        self.stats.count(envelope.kind)
        if delivery.topic != control.control_topic(self.network):
            self.offsets[f"{delivery.topic}/{delivery.partition}"] = delivery.offset + 1
        self._check_limits()

    def on_gradients(self, envelope: Envelope, delivery: Delivery, use: str) -> None:
        self.stats.ignored += 1  # no actor here applies others' gradients

    def on_chunk(self, envelope: Envelope, delivery: Delivery, use: str) -> None:
        raise DataError("a chunk arrived unassembled")  # the subscription puts chunks together first

    # --- data ------------------------------------------------------------------------------

    def on_raw(self, envelope: Envelope, delivery: Delivery, use: str) -> None:
        if self.intake is None:
            raise DataError(f"actor {self.name} has no pipeline for raw records; give it a pipeline: section, or "
                            "send it features messages.")
        self._note_sender(delivery.topic, envelope.sender)
        pipeline = self.config.pipeline
        table = records_table(envelope, pipeline.types, pipeline.csv_default_type)
        if not self.intake.fitted:
            self.replying_to = None  # rows held back from earlier messages may come out with these
        for output, tag in self.intake.push(table, use):
            self.take(output, tag, self.intake.pipeline.features, self.intake.pipeline.label)

    def on_features(self, envelope: Envelope, delivery: Delivery, use: str) -> None:
        self._note_sender(delivery.topic, envelope.sender)
        features, labels = batch_arrays(envelope)
        self.take(arrow_batch(features, labels), use)

    def take(self, table: pa.Table, use: str, features: str = "features", label: str | None = "label") -> None:
        """Rows ready for the model (``features``, ``label``): train on them, predict or evaluate."""
        if not table.num_rows:
            return
        has_label = label is not None and label in table.column_names
        table = table.select([features, label] if has_label else [features])
        table = table.rename_columns(["features", "label"] if has_label else ["features"])
        if use == "train":
            if not has_label:
                raise DataError(f"actor {self.name} trains on this topic, but its rows have no label column "
                                f"{label!r}; send labels, or use the topic to predict.")
            self.batches.push(table)
            self.train_ready()
            return
        rows = np.asarray(table.column("features").combine_chunks().flatten()).reshape(table.num_rows, -1)
        labels = np.asarray(table.column("label")) if has_label else None
        logits = self.model.logits(rows)
        if labels is not None:
            (self.stats.evaluated if use == "evaluate" else self.stats.predicted).add(logits, labels)
        if use == "predict" or (use == "evaluate" and self.config.outputs.predictions is not None):
            self.publish_predictions(logits, rows, labels, holdout=use == "evaluate")

    def train_ready(self, final: bool = False) -> None:
        """One training step per full minibatch (and, with ``final``, one on the rows left)."""
        for batch in self.batches.ready(final):
            if self._check_limits():  # rows past max_steps are not trained
                break
            loss = self.model.train_step(batch.features, batch.labels)
            self.stats.losses.append(float(loss))
            self.stats.rows_trained += len(batch.features)
            self.after_step()

    def publish_predictions(self, logits: np.ndarray, rows: np.ndarray, labels: np.ndarray | None,
                            holdout: bool = False) -> None:
        """``holdout``: the rows were evaluated; they go on marked ``split: holdout`` (scored downstream, never trained on)."""
        arrays = {"probabilities": softmax(logits, self.config.temperature), "logits": logits.astype(np.float32)}
        if self.config.include_inputs:
            arrays["features"] = rows.astype(np.float32)
            if labels is not None:
                arrays["label"] = labels.astype(np.int64)
        step = self.model.step
        self.transport.publish(self.config.outputs.predictions, Envelope(
            "predictions", self.name, model_version=step, computed_with=step, arrays=arrays,
            meta={"temperature": self.config.temperature, **({"split": "holdout"} if holdout else {}),
                  **({"request_id": self.replying_to} if self.replying_to else {})}))
        self.stats.rows_predicted += len(rows)
        self.stats.predictions_published += 1

    def on_predictions(self, envelope: Envelope, delivery: Delivery, use: str) -> None:
        self._note_sender(delivery.topic, envelope.sender)
        self.learn_from_predictions(self, envelope, use)

    # --- parameters --------------------------------------------------------------------------

    def on_parameters(self, envelope: Envelope, delivery: Delivery, use: str) -> None:
        self._note_sender(delivery.topic, envelope.sender)
        accept = self.config.accept_parameters
        if accept is None or envelope.sender == self.name or (accept.senders and envelope.sender not in accept.senders):
            self.stats.ignored += 1
            return
        spec = self.model.spec
        wanted = None if accept.layers is None else {spec.layer(layer).name for layer in accept.layers}
        weights = {name: np.array(value) for name, value in envelope.arrays.items()
                   if wanted is None or spec.layer_of(name) in wanted}
        if not weights:
            raise DataError(f"parameters from {envelope.sender} hold none of the layers {sorted(wanted or [])}; they "
                            f"hold {sorted(envelope.arrays)}.")
        self.model.set_weights(weights)
        layers = sorted({spec.layer_of(name) for name in weights})
        if accept.freeze:
            self.model.freeze(layers)
        self.stats.parameters_loaded += 1
        logger.info("loaded layers %s from %s (its step %s) actor=%s", layers, envelope.sender,
                    envelope.model_version, self.name)

    # --- control -----------------------------------------------------------------------------

    def on_control(self, envelope: Envelope, delivery: Delivery, use: str) -> None:
        op = envelope.meta.get("op")
        if op == control.END:
            self._ended.setdefault(delivery.topic, set()).add(envelope.sender)
            self._note_sender(delivery.topic, envelope.sender)
            self._check_ended()
            return
        target = envelope.meta.get("target", control.ALL)
        if op not in control.ACTOR_OPS or target not in (control.ALL, self.name) or envelope.created_ns < self.started_ns:
            self.stats.ignored += 1
            return
        logger.info("command %s from %s actor=%s", op, envelope.sender, self.name)
        if op in ("start", "resume", "pause"):
            self.paused = op == "pause"
            self.state = "paused" if self.paused else "running"
            self.report()
        elif op == "stop":
            self.stopping = True
        else:
            self.snapshot()

    def _note_sender(self, topic: str, sender: str) -> None:
        self._senders.setdefault(topic, set()).add(sender)

    def _check_ended(self) -> None:
        """Stop (with ``stop_at_end``) once every input topic's senders all ended their streams."""
        inputs = list(self.config.inputs)
        ended = all(self._ended.get(topic) and self._senders.get(topic, set()) <= self._ended[topic]
                    for topic in inputs)
        if inputs and ended:
            self.train_ready(final=True)
            if self.config.stop_at_end:
                logger.info("every input ended actor=%s", self.name)
                self.stopping = True

    def _check_limits(self) -> bool:
        """Whether ``max_steps`` is reached (the actor then stops)."""
        limit = self.config.max_steps
        reached = limit is not None and self.model.step >= limit
        if reached and not self.stopping:
            logger.info("reached max_steps=%d actor=%s", limit, self.name)
            self.stopping = True
        return reached

    def status(self) -> dict:
        """The actor's state and counters, as its reports carry them."""
        stats = self.stats
        return {"actor": self.name, "state": self.state, "step": self.model.step, "handled": stats.handled,
                "loss": stats.loss, "rows_trained": stats.rows_trained, "rows_predicted": stats.rows_predicted,
                "evaluated": stats.evaluated.summary(), "predicted": stats.predicted.summary(),
                "quarantined": self.intake.quarantined_rows if self.intake else 0,
                "quarantine_reasons": dict(self.intake.quarantined) if self.intake else {},
                "rejected": stats.rejected, "ignored": stats.ignored, "duplicates": self.duplicates(),
                "by_kind": dict(stats.by_kind),
                "parameters_loaded": stats.parameters_loaded, "parameters_published": stats.parameters_published,
                "predictions_published": stats.predictions_published, "snapshots": stats.snapshots,
                "records_after_snapshot": self.records_after_snapshot, "frozen": sorted(self.model.frozen()),
                "pid": os.getpid(), "host": socket.gethostname(), "error": self.error, "reported_at": time.time()}


class _Stopping(Exception):
    """Raised by the handler once the actor stops: its subscription leaves the message unhandled."""


def hard_targets(actor: Actor, envelope: Envelope, use: str) -> None:
    """The default use of another actor's predictions: on a topic used to train, learn the teacher's
    arg-max on the features it sent (``include_inputs``); otherwise count them as ignored. A
    distillation loss replaces this hook (``actor.learn_from_predictions``) to learn the soft targets."""
    features, probabilities = envelope.arrays.get("features"), envelope.arrays.get("probabilities")
    if use != "train" or features is None or probabilities is None:
        actor.stats.ignored += 1
        return
    if len(features) != len(probabilities):
        raise DataError(f"predictions from {envelope.sender} hold {len(features)} feature rows but "
                        f"{len(probabilities)} rows of probabilities.")
    actor.take(arrow_batch(features, np.argmax(probabilities, axis=1)), "train")
