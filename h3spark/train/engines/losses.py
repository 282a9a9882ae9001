"""The one home of the losses the model contract trains and attacks with, as functions of the
logits: each returns the loss and its gradient with respect to the logits, and every engine
backpropagates that gradient through its own network (``Model._train_on_logits``,
``Model._input_backward``), so the formulas exist once, in float64 numpy.

    >>> loss, grad = distillation_loss(logits, teacher_probs, temperature=4.0, labels=labels, alpha=0.9)
    >>> loss, grad = cross_entropy_rows(logits, labels, temperature=1.0)

Distillation (Hinton, Vinyals and Dean 2015, "Distilling the knowledge in a neural network"):

    loss = alpha * T^2 * CE(softmax(z / T), soft_targets) + (1 - alpha) * CE(softmax(z), labels)

averaged over the rows; ``soft_targets`` are the teacher's probabilities at the same temperature
T. The T^2 keeps the soft term's gradient, which scales as 1/T^2, comparable to the hard term's
as T changes. Without labels the loss is the soft term alone (alpha counts as 1).
"""

from __future__ import annotations

import numpy as np

from h3spark.errors import DataError

#: How far a row of soft targets may sum from 1 (teachers publish float32 probabilities).
SOFT_TARGET_TOLERANCE = 1e-3


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """log(softmax(logits / temperature)) by row, in float64."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    return scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))


def cross_entropy_rows(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> tuple[float, np.ndarray]:
    """The mean of each row's cross-entropy on softmax(logits / temperature), and the gradient of
    each row's OWN loss with respect to its logits, ``(softmax(z / T) - onehot) / T`` (not divided
    by the row count): what an input gradient per row needs, whatever the batch's size."""
    log_probs = log_softmax(logits, temperature)
    rows = np.arange(len(labels))
    grad = np.exp(log_probs)
    grad[rows, labels] -= 1.0
    loss = float(-log_probs[rows, labels].mean()) if len(labels) else 0.0
    return loss, grad / temperature


def distillation_loss(logits: np.ndarray, soft_targets: np.ndarray, temperature: float,
                      labels: np.ndarray | None = None, alpha: float = 0.9) -> tuple[float, np.ndarray]:
    """Hinton et al.'s loss (see the module's docstring), averaged over the rows, and its gradient
    with respect to the logits: ``alpha * T * (softmax(z/T) - soft) + (1 - alpha) * (softmax(z) - onehot)``
    divided by the row count. Arguments are checked by :func:`check_distillation` first."""
    soft = np.asarray(soft_targets, dtype=np.float64)
    weight = 1.0 if labels is None else alpha
    log_q = log_softmax(logits, temperature)
    soft_loss = -(soft * log_q).sum(axis=1)
    grad = weight * temperature * (np.exp(log_q) * soft.sum(axis=1, keepdims=True) - soft)
    loss = weight * temperature ** 2 * soft_loss.mean()
    if labels is not None and weight < 1.0:
        hard_loss, hard_grad = cross_entropy_rows(logits, labels)
        loss += (1.0 - weight) * hard_loss
        grad += (1.0 - weight) * hard_grad
    return float(loss), grad / len(soft)


def check_distillation(soft_targets: np.ndarray, rows: int, classes: int, temperature: float,
                       alpha: float) -> np.ndarray:
    """``soft_targets`` as float64 (rows, classes) probabilities; a wrong shape, a row that is not a
    distribution, a temperature <= 0 or an alpha outside [0, 1] is a DataError saying what to send."""
    if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
        raise DataError("the distillation temperature must be a number > 0 (Hinton et al. use 2 to 20). "
                        f"Got {temperature!r} instead.")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise DataError("the distillation weight alpha must be in [0, 1] (the soft targets' share of the loss). "
                        f"Got {alpha!r} instead.")
    soft = np.asarray(soft_targets, dtype=np.float64)
    if soft.shape != (rows, classes):
        raise DataError(f"the soft targets have shape {soft.shape}, but the batch needs ({rows}, {classes}): "
                        "one probability per class for each row, as the teacher's predict at temperature T returns.")
    sums = soft.sum(axis=1)
    if not np.all(np.isfinite(soft)) or soft.min(initial=0.0) < 0 or np.any(np.abs(sums - 1.0) > SOFT_TARGET_TOLERANCE):
        bad = int(np.argmax(~np.isfinite(sums) | (np.abs(sums - 1.0) > SOFT_TARGET_TOLERANCE) | (soft < 0).any(axis=1)))
        raise DataError(f"soft target row {bad} is not a probability distribution (values {soft[bad][:4].tolist()}..., "
                        f"sum {sums[bad]:.4g}); send softmax(teacher_logits / T), each row >= 0 and summing to 1.")
    return soft
