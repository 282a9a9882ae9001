"""A config's training options as TrainOptions, and layer options set by a search's params."""

from __future__ import annotations

import pytest

from h3spark.config import TrainingConfig
from h3spark.errors import ConfigError
from h3spark.train import train_options
from h3spark.train.engines.model import TrainOptions
from h3spark.train.engines.spec_params import apply_overrides, check_model_spec

SPEC = {"input_shape": [1, 8, 8], "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "name": "hidden", "units": 16, "activation": "relu"},
    {"type": "dropout", "rate": 0.1},
    {"type": "dense", "name": "logits", "units": 10}]}


def test_a_training_section_and_its_worker_settings_give_the_same_options():
    training = TrainingConfig(engine="torch", optimizer="Adam", lr=0.01, weight_decay=1e-4, clip_norm=2.0,
                              warmup_steps=10, schedule="step", step_size=50, gamma=0.5,
                              optimizer_params={"betas": [0.8, 0.99], "eps": 1e-6})
    expected = TrainOptions(optimizer="adam", lr=0.01, weight_decay=1e-4, clip_norm=2.0, warmup_steps=10, schedule="step",
                            step_size=50, gamma=0.5, beta1=0.8, beta2=0.99, epsilon=1e-6)
    assert train_options(training) == expected
    assert train_options(training.model_dump()) == expected  # what a worker gets, as JSON


def test_mxnet_optimizer_params_set_their_options():
    training = TrainingConfig(engine="mxnet", optimizer="dcasgd", momentum=0.5, workers=1, kvstore="local",
                              optimizer_params={"wd": 0.01, "lamda": 0.2})
    options = train_options(training)
    assert (options.optimizer, options.momentum, options.weight_decay, options.dcasgd_lambda) == ("dcasgd", 0.5, 0.01, 0.2)


def test_a_trial_params_read_with_the_engine_named_and_the_rest_left_out():
    params = {"lr": 0.003, "weight_decay": 1e-3, "epochs": 4, "batch_size": 32, "layers.hidden.units": 64}
    assert train_options(params, engine="mxnet") == TrainOptions(lr=0.003, weight_decay=1e-3)


def test_an_optimizer_outside_the_contract_is_refused_by_name():
    training = TrainingConfig(engine="mxnet", optimizer="nag", workers=1, kvstore="local")  # MXNet's, valid in config
    with pytest.raises(ConfigError) as caught:
        train_options(training)
    assert caught.value.problems == ["the engines' model contract trains with sgd, adam, dcasgd. Got 'nag' instead; "
                                     "set training.optimizer to one of them."]


def test_an_optimizer_param_of_the_other_engine_is_refused():
    with pytest.raises(ConfigError, match="'wd' is no optimizer_params key of engine 'torch', which takes betas, eps, "
                                          "weight_decay"):
        train_options({"optimizer_params": {"wd": 0.1}}, engine="torch")


def test_overrides_set_layer_options_by_name_and_leave_the_inputs_alone():
    params = {"layers.hidden.units": 64, "layers.dropout0.rate": 0.5, "layers.conv1.kernel": 5, "lr": 0.1}
    merged, rest = apply_overrides(SPEC, params)
    assert rest == {"lr": 0.1}
    assert [merged["layers"][i].get(key) for i, key in ((3, "units"), (4, "rate"), (0, "kernel"))] == [64, 0.5, 5]
    assert SPEC["layers"][3]["units"] == 16 and "layers.hidden.units" in params
    shapes = check_model_spec(SPEC, params=params).param_shapes()
    assert shapes["hidden.weight"] == (64, 4 * 3 * 3)  # 8x8 pixels, kernel 5, padding 1, then pool 2


def test_without_layer_params_the_spec_comes_back_unchanged():
    merged, rest = apply_overrides(SPEC, {"lr": 0.1})
    assert merged is SPEC and rest == {"lr": 0.1}


@pytest.mark.parametrize("key, problem", [
    ("layers.hiden.units", "'layers.hiden.units': the model has no layer 'hiden'; its layers are "
                           "['conv1', 'maxpool0', 'flatten0', 'hidden', 'dropout0', 'logits']."),
    ("layers.hidden", "'layers.hidden': a layer's option is set as layers.NAME.OPTION, e.g. layers.hidden.units."),
    ("layers.hidden.init.std", "'layers.hidden.init.std': a layer's option is set as layers.NAME.OPTION, "
                               "e.g. layers.hidden.units."),
    ("layers.conv1.type", "'layers.conv1.type': a layer's type cannot vary (its weights are named by it); vary its "
                          "options, e.g. units or rate."),
])
def test_a_bad_override_key_names_itself(key, problem):
    with pytest.raises(ConfigError) as caught:
        apply_overrides(SPEC, {key: 1})
    assert caught.value.problems == [problem]


def test_an_override_that_breaks_the_shapes_is_caught_by_the_check():
    with pytest.raises(ConfigError) as caught:
        check_model_spec(SPEC, "experiment.model.spec", {"layers.conv1.kernel": 11})
    assert caught.value.problems == ["layer 'conv1' (conv2d) cannot follow its input: it needs an input of at least "
                                     "11x11 pixels after padding 1 (its 11x11 kernel), but its input's shape is (1, 8, 8)."]
