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


def dropout_rates(model) -> list[float]:
    return [layer["rate"] for layer in model.spec.layers if layer.type == "dropout"]


# two features per row (tests/unit/train/test_splits.py's CLEAN rows), two classes
SPEC = {"input_shape": [2], "layers": [{"type": "dense", "name": "hidden", "units": 4, "activation": "relu"},
                                       {"type": "dense", "name": "logits", "units": 2}]}


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


def test_a_spec_trial_sets_layer_options_and_training_options_from_its_params(tmp_path, needs_mxnet):
    trainer, trials = experiment({"engine": "mxnet", "spec": SPEC, "params": {"epochs": 2, "weight_decay": 0.01}},
                                 {"layers.hidden.units": [3, 5], "lr": [0.05]})
    uri = publish(tmp_path, {"train": CLEAN, "test": CLEAN})
    models = []
    for params in trials:
        ctx = FakeContext(uri)
        metrics = trainer(params, ctx)
        assert set(metrics) == {"loss", "accuracy"} and [step for step, _ in ctx.reports] == [0, 1]
        models.append(ctx.saved[0])
    assert [model.spec.layer("hidden")["units"] for model in models] == [3, 5]
    assert [model.get_weights(["hidden"])["hidden.weight"].shape for model in models] == [(3, 2), (5, 2)]
    assert {(model.engine, model.options.lr, model.options.weight_decay, model.options.optimizer) for model in models} == {
        ("mxnet", 0.05, 0.01, "adam")}  # adam: the trainers' default optimizer
    assert SPEC["layers"][0]["units"] == 4  # the config's spec is left alone


def test_a_spec_trial_refuses_a_layer_it_does_not_have_and_saves_with_model_save(tmp_path, needs_mxnet):
    from h3spark.train.engines.model import load_model
    from h3spark.tune._models import save_model

    uri = publish(tmp_path, {"train": CLEAN, "test": CLEAN})
    trainer = GluonTrainer("logistic_regression", {"epochs": 1}, spec=SPEC)
    with pytest.raises(ConfigError, match=r"'layers.hiden.units': the model has no layer 'hiden'; its layers are \['hidden', 'logits'\]"):
        trainer({"layers.hiden.units": 8}, FakeContext(uri))
    ctx = FakeContext(uri)
    trainer({}, ctx)
    path = save_model(ctx.saved[0], str(tmp_path / "model"))
    assert path.endswith("model.safetensors") and load_model(path).spec == ctx.saved[0].spec


def test_the_cnn_shorthand_is_a_spec_over_square_images(tmp_path, needs_mxnet):
    uri = publish(tmp_path, {"train": CLEAN, "test": CLEAN})
    with pytest.raises(ConfigError, match="the cnn needs square images, but rows have 2 features"):
        GluonTrainer("cnn", {"epochs": 1})({}, FakeContext(uri))
    with pytest.raises(ConfigError, match="the mxnet engine trains 'mlp' or 'cnn', or a model spec"):
        GluonTrainer("resnet")


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
