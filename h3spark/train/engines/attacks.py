"""Adversarial examples against any engine's model, through the model contract's input gradient.

    >>> adversarial = fgsm(model, features, labels, epsilon=0.1)          # one signed-gradient step
    >>> robustness(model, features, labels, [0.0, 0.1, 0.2], temperature=4.0)
    {'epsilons': [0.0, 0.1, 0.2], 'error': [0.03, 0.41, 0.80], 'masked_rows': 0.0, ...}

FGSM (Goodfellow, Shlens and Szegedy 2015) moves each input by ``epsilon`` in the direction of
the sign of the loss's gradient: ``x + epsilon * sign(d loss / d x)``, clipped to the features'
range. ``temperature`` chooses the loss the gradient is taken of: cross-entropy on
softmax(logits / T). T = 1 is the model's own softmax; a larger T is the attack Carlini and
Wagner (2016) used against defensive distillation (Papernot et al. 2016), whose softmax saturates
at T = 1 so that its gradient vanishes in float32 (gradient masking): dividing the logits by T
brings the gradient back. ``masked_rows`` counts the rows whose input gradient is exactly zero,
where FGSM cannot move at all.
"""

from __future__ import annotations

import numpy as np

from h3spark.errors import DataError
from h3spark.train.engines.model import Model


def fgsm(model: Model, features: np.ndarray, labels: np.ndarray, epsilon: float, temperature: float = 1.0,
         bounds: tuple[float, float] | None = (0.0, 1.0)) -> np.ndarray:
    """``features`` moved by ``epsilon`` along the sign of the input gradient at ``temperature``,
    clipped to ``bounds`` (None: unclipped). ``epsilon`` is in the features' units."""
    _check_epsilon(epsilon)
    features = np.asarray(features, dtype=np.float32)
    return _moved(features, np.sign(model.input_gradient(features, labels, temperature)), epsilon, bounds)


def robustness(model: Model, features: np.ndarray, labels: np.ndarray, epsilons: list[float],
               temperature: float = 1.0, bounds: tuple[float, float] | None = (0.0, 1.0)) -> dict:
    """The model's error on FGSM examples at each of ``epsilons`` (0: the clean error), the
    gradient taken once at ``temperature``; with the fraction of rows whose gradient is all zero."""
    for epsilon in epsilons:
        _check_epsilon(epsilon)
    features, labels = np.asarray(features, dtype=np.float32), np.asarray(labels).reshape(-1)
    sign = np.sign(model.input_gradient(features, labels, temperature))
    masked = float(np.mean(~np.any(sign.reshape(len(labels), -1) != 0, axis=1)))
    errors = [float(np.mean(model.logits(_moved(features, sign, epsilon, bounds)).argmax(axis=1) != labels))
              for epsilon in epsilons]
    return {"epsilons": [float(e) for e in epsilons], "error": errors, "temperature": float(temperature),
            "masked_rows": masked}


def _check_epsilon(epsilon) -> None:
    if isinstance(epsilon, bool) or not (isinstance(epsilon, (int, float)) and np.isfinite(epsilon) and epsilon >= 0):
        raise DataError(f"FGSM's epsilon must be a number >= 0 (in the features' units). Got {epsilon!r} instead.")


def _moved(features: np.ndarray, sign: np.ndarray, epsilon: float, bounds: tuple[float, float] | None) -> np.ndarray:
    moved = features + np.float32(epsilon) * sign.astype(np.float32)
    return moved if bounds is None else np.clip(moved, bounds[0], bounds[1])
