"""tune's built-in trainers are glue over the engines: an experiment config's options (dropout
included) reach the model the engine builds."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from h3spark.config import H3SparkConfig, validate
from h3spark.errors import ConfigError
from h3spark.tune._from_config import search_from_config, train_fn_from_config
from h3spark.tune._models import GluonTrainer, TorchTrainer
from tests.conftest import require
from tests.unit.train.test_splits import CLEAN, FakeContext, publish

HAS_MXNET = importlib.util.find_spec("mxnet") is not None


@pytest.fixture
def needs_mxnet():
    require(HAS_MXNET, "mxnet is not installed (pip install 'h3spark[mxnet]')")


def experiment(model: dict, space: dict):
    config = validate({"name": "e", "experiment": {"search": "grid", "model": model, "space": space}}, H3SparkConfig, "e.yaml")
    section = config.experiment
    return train_fn_from_config(section), [trial.params for trial in search_from_config(section).next_batch({})]


def dropout_rates(net) -> list[float]:
    return [block._rate for block in net._children.values() if type(block).__name__ == "Dropout"]


def test_dropout_from_the_search_space_reaches_the_gluon_mlp(tmp_path, needs_mxnet):
    trainer, trials = experiment({"engine": "mxnet", "name": "mlp", "params": {"epochs": 1, "hidden": [8, 4]}},
                                 {"dropout": [0.0, 0.3]})
    uri = publish(tmp_path, {"train": CLEAN, "test": CLEAN})
    nets = []
    for params in trials:
        ctx = FakeContext(uri)
        metrics = trainer(params, ctx)
        assert 0.0 <= metrics["accuracy"] <= 1.0 and [step for step, _ in ctx.reports] == [0]
        nets.append(ctx.saved[0])
    assert [dropout_rates(net) for net in nets] == [[], [0.3, 0.3]]


def test_dropout_is_checked_and_belongs_to_the_mlp(tmp_path, needs_mxnet):
    uri = publish(tmp_path, {"train": CLEAN, "test": CLEAN})
    with pytest.raises(ConfigError, match=r"The 'dropout' parameter of the MLP must be a number in the range \[0, 1\). Got 1.5 instead."):
        GluonTrainer("mlp", {"epochs": 1})({"dropout": 1.5}, FakeContext(uri))
    with pytest.raises(ConfigError, match="dropout applies to the mlp; the cnn has none"):
        GluonTrainer("cnn", {"epochs": 1})({"dropout": 0.2}, FakeContext(uri))


def test_the_torch_trainer_says_where_torch_is_needed(monkeypatch):
    from h3spark.errors import DependencyError

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed, wherever this runs

    trainer = TorchTrainer("mlp", {"dropout": 0.2})  # built on the driver, which needs no torch
    with pytest.raises(DependencyError, match=r"pip install 'h3spark\[torch\]'.*spark\.pyspark\.python=\.venv-torch/bin/python"):
        trainer({}, FakeContext(None))


def test_mlp_widths_and_dropout_are_checked_once_for_every_framework():
    from h3spark.train.engines.mlp import check_dropout, mlp_widths

    assert mlp_widths(16) == [16] and mlp_widths([32, 8.0]) == [32, 8] and check_dropout(0) == 0.0
    for hidden in ([], [0], [True], "64", [2.5]):
        with pytest.raises(ConfigError, match="The 'hidden' parameter of the MLP must be a positive int"):
            mlp_widths(hidden)
    for rate in (-0.1, 1, True, "0.5", np.nan):
        with pytest.raises(ConfigError, match="The 'dropout' parameter of the MLP"):
            check_dropout(rate)
