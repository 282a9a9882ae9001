"""The model a training run trains (train/_model.py): its spec from the settings, the driver's
checks before any worker starts, and the model file every checkpoint holds."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.errors import ConfigError, DataError
from h3spark.train._labels import check_training_labels
from h3spark.train._model import (
    MODEL_FILE,
    check_training_model,
    model_classes,
    model_file,
    read_model_file,
    training_spec,
)
from h3spark.train.engines.model import TrainOptions, build_model, load_model

SPEC = {"input_shape": [4], "layers": [{"type": "dense", "name": "hidden", "units": 5, "activation": "relu"},
                                       {"type": "dense", "name": "out", "units": 3}]}


def test_the_mlp_shorthand_is_a_spec_over_the_flattened_rows():
    settings = {"model": "mlp", "params": {"hidden": [8, 6], "classes": 3}}
    spec = training_spec(settings, (1, 2, 2))
    assert spec.input_shape == (4,) and spec.classes == 3 == model_classes(settings)
    assert [(layer.name, layer["units"]) for layer in spec.layers] == [("hidden0", 8), ("hidden1", 6), ("logits", 3)]
    assert model_classes({"model": "mlp", "params": {}}) == 10 and training_spec({"model": "mlp"}, (4,)).classes == 10


def test_a_spec_must_take_the_datasets_rows():
    settings = {"model": SPEC, "dataset_uri": "file:///data"}
    assert training_spec(settings, (2, 2)).layers[-1].name == "out" and model_classes(settings) == 3
    with pytest.raises(DataError) as caught:
        training_spec(settings, (8,))
    assert str(caught.value) == ("training.model takes rows of shape [4] (4 values), but the dataset file:///data has rows "
                                 "of shape [8] (8 values). Set training.model.input_shape to the dataset's shape.")


def test_the_labels_check_reads_a_specs_classes(labelled):
    uri = labelled({"train": [0, 1, 2, 3]})
    with pytest.raises(DataError) as caught:
        check_training_labels({"dataset_uri": uri, "model": SPEC, "train_split": "train"})
    assert "run from 0 to 3, but training.model's last layer ('out': units) is 3" in str(caught.value)
    check_training_labels({"dataset_uri": uri, "model": {**SPEC, "layers": [{**SPEC["layers"][1], "units": 4}]}})


def test_the_driver_refuses_an_optimizer_outside_the_contract_and_a_spec_of_another_width(labelled):
    uri = labelled({"train": [0, 1, 2]})  # rows of 4 features
    settings = {"dataset_uri": uri, "model": SPEC, "engine": "mxnet", "optimizer": "sgd", "lr": 0.1}
    check_training_model(settings)
    check_training_model({**settings, "model": "mlp", "params": {"hidden": [2], "classes": 3}})
    with pytest.raises(ConfigError, match="the engines' model contract trains with sgd, adam, dcasgd. Got 'nag' instead"):
        check_training_model({**settings, "optimizer": "nag"})
    with pytest.raises(DataError, match=r"training.model takes rows of shape \[6\] \(6 values\), but the dataset .* "
                                        r"has rows of shape \[4\]"):
        check_training_model({**settings, "model": {**SPEC, "input_shape": [6]}})


def test_the_model_file_is_model_saves_and_loads_in_any_engine():
    spec = training_spec({"model": SPEC}, (4,))
    model = build_model("numpy", spec, seed=3, options=TrainOptions(lr=0.5))
    model.train_step(np.ones((2, 4), np.float32), np.array([0, 2]))
    data = model_file(model)
    weights = read_model_file(data, where="file:///ckpt/step-1")
    assert sorted(weights) == ["hidden.bias", "hidden.weight", "out.bias", "out.weight"]
    assert all(np.array_equal(weights[name], value) for name, value in model.get_weights().items())
    with pytest.raises(DataError, match=r"^file:///ckpt/step-1: .* is not a model h3spark saved"):
        read_model_file(b"not safetensors", where="file:///ckpt/step-1")


def test_a_checkpoints_model_file_loads_with_load_model(tmp_path):
    model = build_model("numpy", training_spec({"model": SPEC}, (4,)), seed=1)
    (tmp_path / MODEL_FILE).write_bytes(model_file(model))
    loaded = load_model(str(tmp_path / MODEL_FILE))
    assert loaded.engine == "numpy" and loaded.spec == model.spec
    assert np.array_equal(loaded.logits(np.ones((1, 4))), model.logits(np.ones((1, 4))))
