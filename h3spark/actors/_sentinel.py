"""The validation sentinel: an actor that evaluates another's weights while that one goes on training.

    sentinel:
      inputs: {digits.validation: evaluate, digits.learner.weights: evaluate}
      model: {engine: numpy, spec: ...}            # the learner's spec
      accept_parameters: {senders: [learner]}
      sentinel: {every_s: 0}                       # 0: every parameters message; N: the newest every N seconds
      outputs: {validation: digits.validation.results}

Rows of its ``evaluate`` inputs become its validation set; once each of those topics ended (its
senders' end markers), every parameters message it accepts is loaded and the whole set scored.
The result (loss, accuracy, rows) is stamped with the model version the parameters came from (the
learner's training step), published to ``outputs.validation`` as a ``control`` message with op
``validation``, and kept in the sentinel's reports. Parameters that arrive before the set is complete,
or within ``every_s`` of the last evaluation, wait; only the newest waiting ones are evaluated (the
last ones always are, when their topic ends), and the version scored last is not scored again. The
learner decides how often it publishes (``publish_parameters.every_steps``), so with ``every_s: 0``
the sentinel's results are the same at every run.
"""

from __future__ import annotations

import collections
import logging
import time

import numpy as np
import pyarrow as pa

from h3spark.actors import _control as control
from h3spark.actors._actor import Actor
from h3spark.actors._envelope import Envelope
from h3spark.errors import DataError

logger = logging.getLogger(__name__)

VALIDATION = "validation"  # the op of a sentinel's result messages
KEPT_RESULTS = 20  # results a report carries (the newest)


class Sentinel(Actor):
    """An :class:`Actor` that keeps its evaluate inputs as a validation set and scores the weights it accepts."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.validation_features: list[np.ndarray] = []
        self.validation_labels: list[np.ndarray] = []
        self.results: collections.deque[dict] = collections.deque(maxlen=KEPT_RESULTS)
        self.evaluations = 0
        self.skipped = 0  # parameters replaced by newer ones before they were evaluated
        self._pending: tuple[Envelope, object] | None = None
        self._ended_inputs: set[str] = set()
        self._evaluated_s = float("-inf")

    @property
    def validation_rows(self) -> int:
        return sum(len(labels) for labels in self.validation_labels)

    def take(self, table: pa.Table, use: str, features: str = "features", label: str | None = "label") -> None:
        if use != "evaluate":
            super().take(table, use, features, label)
            return
        if label is None or label not in table.column_names:
            raise DataError(f"sentinel {self.name} keeps labelled rows to validate on; these rows have no "
                            f"column {label!r}.")
        limit = self.config.sentinel.max_rows - self.validation_rows
        rows = np.asarray(table.column(features).combine_chunks().flatten()).reshape(table.num_rows, -1)[:limit]
        self.validation_features.append(rows.astype(np.float32))
        self.validation_labels.append(np.asarray(table.column(label))[:limit].astype(np.int64))

    def on_parameters(self, envelope: Envelope, delivery, use: str) -> None:
        """Keep the newest accepted parameters; evaluate them when the set is whole and they are due."""
        self._note_sender(delivery.topic, envelope.sender)
        accept = self.config.accept_parameters
        scored = self.results[-1] if self.results else {}
        senders = (accept.senders or [envelope.sender]) if accept is not None else []
        refused = envelope.sender == self.name or envelope.sender not in senders
        again = (scored.get("of"), scored.get("model_version")) == (envelope.sender, envelope.model_version)
        if refused or again:  # not for this sentinel, or the version it scored last (a learner stopping sends it again)
            self.stats.ignored += 1
            return
        if self._pending is not None:
            self.skipped += 1
        self._pending = (envelope, delivery)
        self._evaluate_pending(final=False)

    def on_control(self, envelope: Envelope, delivery, use: str) -> None:
        if envelope.meta.get("op") == control.END and delivery.topic in self.config.inputs:
            self._ended_inputs.add(delivery.topic)
            self._evaluate_pending(final=delivery.topic == self.config.sentinel.parameters)
        super().on_control(envelope, delivery, use)

    def _evaluate_pending(self, final: bool) -> None:
        """Evaluate the waiting parameters once the validation set is whole, when ``every_s`` passed (or ``final``)."""
        weights = self.config.sentinel.parameters
        whole = all(topic in self._ended_inputs for topic in self.config.inputs if topic != weights)
        due = final or time.monotonic() - self._evaluated_s >= self.config.sentinel.every_s
        if self._pending is None or not whole or not due:
            return
        (envelope, delivery), self._pending = self._pending, None
        self.validate(envelope, delivery)

    def validate(self, envelope: Envelope, delivery) -> dict:
        """Load ``envelope``'s weights (as any actor loads parameters, by layer name) and score the validation set."""
        if not self.validation_labels:
            raise DataError(f"sentinel {self.name} has no validation rows: its inputs other than "
                            f"{self.config.sentinel.parameters} ended without sending any.")
        super().on_parameters(envelope, delivery, "evaluate")
        self.model.step = envelope.model_version or 0  # its version is the version it evaluates
        scores = self.model.evaluate(np.concatenate(self.validation_features), np.concatenate(self.validation_labels))
        result = {"model_version": envelope.model_version, "of": envelope.sender, "loss": scores["loss"],
                  "accuracy": scores["accuracy"], "rows": self.validation_rows, "evaluated_at": time.time()}
        self._evaluated_s = time.monotonic()
        self.evaluations += 1
        self.results.append(result)
        topic = self.config.outputs.validation
        if topic is not None:
            self.transport.publish(topic, Envelope("control", self.name, model_version=envelope.model_version,
                                                   meta={"op": VALIDATION, **result}))
        logger.info("validated %s at version %s: loss %.4f, accuracy %.4f on %d rows actor=%s", envelope.sender,
                    envelope.model_version, scores["loss"], scores["accuracy"], result["rows"], self.name)
        return result

    def status(self) -> dict:
        return {**super().status(), "validation": list(self.results), "evaluations": self.evaluations,
                "skipped": self.skipped, "validation_rows": self.validation_rows}

