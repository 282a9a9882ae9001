"""A trial whose model has fewer classes than the data's labels fails, naming both, before it trains."""

from __future__ import annotations

import importlib.util

import pytest

from h3spark.errors import DataError
from h3spark.tune._models import GluonTrainer
from tests.conftest import require
from tests.unit.train.test_splits import FakeContext, publish

FOUR_CLASSES = ([0, 1, 2, 3] * 5, [0, 1, 2, 3] * 5)


@pytest.fixture
def needs_mxnet():
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")


def test_a_gluon_trial_with_too_few_classes_fails_naming_the_label_range(tmp_path, needs_mxnet):
    uri = publish(tmp_path, {"train": FOUR_CLASSES, "test": ([0, 5], [0, 5])})
    ctx = FakeContext(uri)
    with pytest.raises(DataError, match=r"the labels of split 'train' of .* run from 0 to 3, but "
                                        r"experiment.model.params.classes is 3: .* Set experiment.model.params.classes to 4"):
        GluonTrainer("mlp", {"epochs": 1, "classes": 3})({}, ctx)
    with pytest.raises(DataError, match=r"split 'test' of .* run from 0 to 5, but experiment.model.params.classes is 4"):
        GluonTrainer("mlp", {"epochs": 1})({"classes": 4}, ctx)  # the scoring split counts too
    assert ctx.reports == [] and ctx.saved == []  # nothing trained


def test_a_gluon_trial_whose_classes_fit_trains(tmp_path, needs_mxnet):
    uri = publish(tmp_path, {"train": FOUR_CLASSES, "test": FOUR_CLASSES})
    metrics = GluonTrainer("mlp", {"epochs": 1, "hidden": [4]})({"classes": 4}, FakeContext(uri))
    assert 0.0 <= metrics["accuracy"] <= 1.0
