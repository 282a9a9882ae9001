"""A student's use of a teacher's predictions: Hinton et al.'s distillation loss on the softened outputs.

    student:
      inputs: {digits.teacher.soft: train}      # the teacher's predictions (include_inputs: true)
      distill: {alpha: 0.9, labels: true}

The teacher publishes ``probabilities`` = softmax(logits / T) with T in its meta, and, with
``include_inputs``, the ``features`` (and ``label``) it predicted on. On a topic used to train,
the student takes one :meth:`Model.distill_step <h3spark.train.engines.model.Model.distill_step>`
per ``batch_size`` rows of each message (a message's last rows make a smaller step; teachers
predict whole messages, so a multiple of the batch size keeps every step full), at the teacher's T:
``alpha`` of the loss on the soft
targets and, when the message has labels and ``labels`` is on, ``1 - alpha`` on them. Predictions
of held-out rows (``split: holdout``) are scored, never trained on.
"""

from __future__ import annotations

import numpy as np

from h3spark.errors import DataError


def distill_from_predictions(actor, envelope, use: str) -> None:
    """The ``learn_from_predictions`` hook of an actor whose config has ``distill``."""
    features, soft, labels = _arrays(envelope)
    if use == "evaluate":
        if labels is None:
            raise DataError(f"held-out predictions from {envelope.sender} carry no labels to score against; "
                            "send labels with the held-out rows.")
        actor.stats.evaluated.add(actor.model.logits(features), labels)
        return
    if use != "train":
        actor.stats.ignored += 1
        return
    temperature = _temperature(envelope)
    settings, size = actor.config.distill, actor.config.training.batch_size
    hard = labels if settings.labels else None
    for begin in range(0, len(features), size):
        if actor._check_limits():  # rows past max_steps are not trained
            return
        end = begin + size
        loss = actor.model.distill_step(features[begin:end], soft[begin:end], temperature,
                                        None if hard is None else hard[begin:end], settings.alpha)
        actor.stats.losses.append(float(loss))
        actor.stats.rows_trained += len(features[begin:end])
        actor.after_step()


def _arrays(envelope) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The features, probabilities and (optional) labels of a predictions message, checked against each other."""
    features, soft = envelope.arrays.get("features"), envelope.arrays.get("probabilities")
    if features is None or soft is None:
        raise DataError(f"predictions from {envelope.sender} carry {sorted(envelope.arrays)}; a student needs "
                        "'features' and 'probabilities': set include_inputs: true on the teacher.")
    labels = envelope.arrays.get("label")
    rows = {len(features), len(soft), *(() if labels is None else (len(labels),))}
    if len(rows) != 1:
        raise DataError(f"predictions from {envelope.sender} hold {len(features)} feature rows, {len(soft)} rows of "
                        f"probabilities and {'no' if labels is None else len(labels)} labels; they must match.")
    return np.asarray(features), np.asarray(soft), None if labels is None else np.asarray(labels)


def _temperature(envelope) -> float:
    value = envelope.meta.get("temperature")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise DataError(f"predictions from {envelope.sender} say no temperature > 0 in their meta (got {value!r}); "
                        "a teacher actor publishes its 'temperature' with its predictions.")
    return float(value)
