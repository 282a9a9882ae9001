"""The one split rule: which rows train a model and which score it, the same for the sklearn
engine and tune's trainers."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.errors import ConfigError
from h3spark.feed import ArrayBatches, DataIterator
from h3spark.storage import describe_splits, publishing, read_manifest, write_manifest
from h3spark.train.engines.sklearn import train_on_dataset
from h3spark.train.engines.splits import choose_splits, train_and_eval_arrays, train_and_eval_sources
from h3spark.tune._models import SklearnTrainer


def publish(root, splits: dict[str, tuple[list, list]]) -> str:
    """Publish ``split=NAME/`` folders of (feature value, label) rows, 2 features per row."""
    uri = f"file://{root}/data"
    with publishing(uri) as tmp_uri:
        for split, (values, labels) in splits.items():
            folder = os.path.join(tmp_uri[len("file://"):], f"split={split}") if split else tmp_uri[len("file://"):]
            os.makedirs(folder, exist_ok=True)
            features = np.repeat(np.asarray(values, np.float32)[:, None], 2, axis=1)
            offsets = pa.array(np.arange(0, features.size + 1, 2, dtype=np.int32))
            table = pa.table({"features": pa.ListArray.from_arrays(offsets, pa.array(features.reshape(-1))),
                              "label": pa.array(np.asarray(labels, np.int64))})
            pq.write_table(table, os.path.join(folder, "part-00000.parquet"))
        write_manifest(tmp_uri, {"rows": sum(len(labels) for _, labels in splits.values()), "features": "features",
                                 "label": "label", "splits": describe_splits(tmp_uri)})
    return uri


# Features equal the label, except in validation, whose labels are all wrong: a model scores 1.0 on
# test and 0.0 on validation, so the score tells which split was used.
CLEAN = ([0, 1] * 10, [0, 1] * 10)
WRONG = ([0, 1] * 3, [1, 0] * 3)


class FakeContext:
    def __init__(self, dataset_uri):
        self.dataset_uri, self.reports, self.saved = dataset_uri, [], []

    def report(self, metrics, step=None):
        self.reports.append((step, dict(metrics)))

    def save_model(self, model):
        self.saved.append(model)


@pytest.mark.parametrize("splits, expected", [
    ({"train": {}, "validation": {}, "test": {}}, ("train", "validation")),
    ({"test": {}, "train": {}}, ("train", "test")),
    ({"train": {}}, ("train", None)),
    ({"all": {}}, ("all", None)),
    ({"validation": {}, "test": {}}, ("validation", None)),  # no train split: a holdout of the first
    ({}, (None, None)),  # the manifest lists none: the feeder finds them
])
def test_choose_splits(splits, expected):
    assert choose_splits(splits) == expected


def test_the_engine_and_the_trials_score_on_validation_before_test(tmp_path):
    uri = publish(tmp_path, {"train": CLEAN, "validation": WRONG, "test": ([0, 1] * 2, [0, 1] * 2)})
    _, metrics = train_on_dataset(uri, read_manifest(uri)["splits"], "knn", {"n_neighbors": 1}, 0.25, seed=0)
    assert metrics["evaluated_on"] == "validation" and metrics["test_rows"] == 6 and metrics["accuracy"] == 0.0
    ctx = FakeContext(uri)
    trial = SklearnTrainer("knn", {"n_neighbors": 1})({}, ctx)
    assert trial == {"accuracy": 0.0, "train_accuracy": 1.0} and ctx.reports == [(0, trial)] and len(ctx.saved) == 1


def test_without_validation_both_score_on_test(tmp_path):
    uri = publish(tmp_path, {"train": CLEAN, "test": WRONG})
    _, metrics = train_on_dataset(uri, read_manifest(uri)["splits"], "knn", {"n_neighbors": 1}, 0.25, seed=0)
    assert metrics["evaluated_on"] == "test" and metrics["accuracy"] == 0.0
    assert SklearnTrainer("knn", {"n_neighbors": 1})({}, FakeContext(uri))["accuracy"] == 0.0


def test_an_unsplit_dataset_gets_the_same_seeded_holdout_everywhere(tmp_path):
    uri = publish(tmp_path, {None: ([0, 1] * 10, [0, 1] * 10)})
    arrays = train_and_eval_arrays(uri, holdout_fraction=0.25, seed=3)
    assert arrays.evaluated_on is None and len(arrays.y) == 15 and len(arrays.y_eval) == 5
    _, metrics = train_on_dataset(uri, read_manifest(uri)["splits"], "knn", {"n_neighbors": 1}, 0.25, seed=3)
    assert "evaluated_on" not in metrics and metrics["train_rows"] == 15 and metrics["test_rows"] == 5
    train, evaluate = train_and_eval_sources(uri, batch_size=4, epochs=2, holdout_fraction=0.25, seed=3)
    assert isinstance(train, ArrayBatches) and len(train) == 2 * 4
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in evaluate]), arrays.y_eval)


def test_sources_stream_the_train_split_and_the_scoring_split(tmp_path):
    uri = publish(tmp_path, {"train": CLEAN, "validation": WRONG, "test": CLEAN})
    train, evaluate = train_and_eval_sources(uri, batch_size=8, epochs=3, holdout_fraction=0.25, seed=0)
    assert isinstance(train, DataIterator) and train.dataset_.split == "train" and len(train) == 3 * 3
    assert evaluate.dataset_.split == "validation"


def test_the_trainers_need_a_dataset():
    with pytest.raises(ConfigError, match="the built-in trainers need a dataset"):
        SklearnTrainer("knn")({}, FakeContext(None))
