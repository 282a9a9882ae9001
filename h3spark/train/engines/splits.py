"""Which rows a model trains on and which rows score it: one rule for every engine and trial.

- Train on the ``train`` split; a dataset without one trains on ``all`` (an unsplit dataset),
  else on its first split.
- Score on ``validation`` when the dataset has a ``train`` split and a validation split, else on
  ``test``. Validation comes first because scores pick models (an experiment's best trial); the
  test split stays unseen by that choice when the dataset has both.
- Without a train split or without either scoring split: a seeded holdout of
  ``holdout_fraction`` of the training rows (:func:`holdout_split`).

Engines and tune's trainers call :func:`choose_splits` (or the loaders built on it), never
their own rule.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

from h3spark.errors import DataError
from h3spark.storage import ALL_ROWS

TRAIN_SPLIT = "train"
EVALUATION_SPLITS = ("validation", "test")  # first present wins
EVAL_BATCH_SIZE = 4096


class TrainEval(NamedTuple):
    """Training and scoring rows as arrays; ``evaluated_on`` names the split, None for a holdout."""

    X: np.ndarray
    y: np.ndarray
    X_eval: np.ndarray
    y_eval: np.ndarray
    evaluated_on: str | None


def choose_splits(splits: Mapping) -> tuple[str | None, str | None]:
    """``(train_split, eval_split)`` for a dataset with ``splits``; ``eval_split`` None means a holdout.

    >>> choose_splits({"train": {}, "validation": {}, "test": {}})
    ('train', 'validation')
    >>> choose_splits({"all": {}})
    ('all', None)
    """
    if TRAIN_SPLIT in splits:
        return TRAIN_SPLIT, next((name for name in EVALUATION_SPLITS if name in splits), None)
    return (ALL_ROWS if ALL_ROWS in splits else next(iter(splits), None)), None


def dataset_splits(uri: str) -> dict:
    """The splits the dataset's manifest lists ({} when it lists none: the feeder then finds them)."""
    from h3spark.storage import read_manifest

    return read_manifest(uri).get("splits") or {}


def holdout_split(rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, test) row indices."""
    order = np.random.default_rng(seed).permutation(rows)
    test_rows = max(1, int(round(rows * fraction)))
    return np.sort(order[test_rows:]), np.sort(order[:test_rows])


def load_split(uri: str, split: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Every row of one split of a published dataset as (features, labels), read through the
    feeder; features keep their shape (images stay images)."""
    from h3spark.feed import DataIterator

    batches = list(DataIterator(uri, split, batch_size=8192))
    if not batches:
        raise DataError(f"split {split!r} of {uri} has no rows; there is nothing to train on.")
    return np.concatenate([batch.features for batch in batches]), np.concatenate([batch.labels for batch in batches])


def train_and_eval_arrays(uri: str, holdout_fraction: float, seed: int, splits: Mapping | None = None) -> TrainEval:
    """The training and scoring rows of the dataset at ``uri`` by :func:`choose_splits`."""
    train_split, eval_split = choose_splits(dataset_splits(uri) if splits is None else splits)
    X, y = load_split(uri, train_split)
    if eval_split is not None:
        return TrainEval(X, y, *load_split(uri, eval_split), eval_split)
    train, test = holdout_split(len(y), holdout_fraction, seed)
    return TrainEval(X[train], y[train], X[test], y[test], None)


def train_and_eval_sources(uri: str, *, batch_size: int, epochs: int, holdout_fraction: float, seed: int,
                           eval_batch_size: int = EVAL_BATCH_SIZE):
    """``(train, eval)`` minibatch sources by the same rule: the training split shuffled for
    ``epochs`` (read through DataIterator), the scoring split once; a holdout comes from memory."""
    from h3spark.feed import ArrayBatches, DataIterator

    splits = dataset_splits(uri)
    train_split, eval_split = choose_splits(splits)
    if eval_split is None:
        data = train_and_eval_arrays(uri, holdout_fraction, seed, splits)
        return (ArrayBatches(data.X, data.y, batch_size, epochs, seed),
                ArrayBatches(data.X_eval, data.y_eval, eval_batch_size))
    train = DataIterator(uri, train_split, batch_size=batch_size, epochs=epochs, shuffle=True, seed=seed, cache=True)
    return train, DataIterator(uri, eval_split, batch_size=eval_batch_size, cache=True)
