"""The torch engine of the model contract (TorchModel), in this interpreter: built from a spec with
the spec's initial weights, weights by layer name, save and load, and each training option's
effect, checked against the rates of learning_rate() and against numpy's arithmetic."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from h3spark.errors import ConfigError, DataError
from h3spark.train.engines.model import TrainOptions, build_model, learning_rate, load_model
from h3spark.train.engines.spec import ModelSpec

CNN = {"input_shape": [1, 8, 8], "init": {"kind": "normal", "mean": 0.0, "std": 0.05}, "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 16, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "batchnorm"},
    {"type": "flatten"},
    {"type": "dense", "name": "hidden", "units": 64, "activation": "relu"},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "name": "logits", "units": 10}]}
ROOT = Path(__file__).resolve().parents[3]
TINY = {"input_shape": [4], "layers": [
    {"type": "dense", "name": "hidden", "units": 5, "activation": "tanh"},
    {"type": "dense", "name": "logits", "units": 3}]}


@pytest.fixture(autouse=True)
def _torch(torch_here):
    return torch_here


def model(spec: dict = TINY, seed: int = 0, **options):
    return build_model("torch", ModelSpec.from_dict(spec), seed=seed, options=TrainOptions(**options))


def batch(rows: int = 8, features: int = 4, seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (rows, features)).astype(np.float32), rng.integers(0, 3, rows))


def images(rows: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (rows, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, rows)


def update(before: dict, after: dict) -> dict:
    return {name: after[name] - before[name] for name in before}


def global_norm(arrays: dict) -> float:
    return math.sqrt(sum(float(np.sum(np.square(value, dtype=np.float64))) for value in arrays.values()))


# --- building and weights --------------------------------------------------------------------

def test_the_issue_cnn_builds_with_one_child_per_layer_and_the_spec_initial_weights():
    spec = ModelSpec.from_dict(CNN)
    cnn = build_model("torch", spec, seed=7)
    assert [name for name, _ in cnn.network.named_children()] == [layer.name for layer in spec.layers]
    weights, initial = cnn.get_weights(), spec.initial_weights(7)
    assert list(weights) == list(spec.param_shapes())  # num_batches_tracked left out
    assert all(weights[name].dtype == np.float32 and np.array_equal(weights[name], initial[name]) for name in initial)
    assert not np.array_equal(build_model("torch", spec, seed=8).get_weights()["conv1.weight"], initial["conv1.weight"])
    features, _ = images(5)
    assert cnn.logits(features).shape == cnn.logits(features.reshape(5, 64)).shape == (5, 10)
    assert cnn.predict(features).sum(axis=1) == pytest.approx(np.ones(5), abs=1e-5)


def test_weights_by_layer_name_move_a_subset_into_another_model():
    source, target = model(CNN, seed=1), model(CNN, seed=2)
    conv = source.get_weights(["conv1"])
    assert sorted(conv) == ["conv1.bias", "conv1.weight"]
    before = target.get_weights()
    target.set_weights(conv)
    after = target.get_weights()
    assert np.array_equal(after["conv1.weight"], conv["conv1.weight"])
    assert all(np.array_equal(after[name], before[name]) for name in after if not name.startswith("conv1."))
    with pytest.raises(ConfigError, match="no layer 'conv9'"):
        source.get_weights(["conv9"])


def test_a_wrong_shape_or_name_is_a_data_error_naming_the_weight_and_both_shapes():
    cnn = model(CNN)
    with pytest.raises(DataError, match=r"'conv1.weight' has shape \(8, 1, 3, 3\), but the model's is \(16, 1, 3, 3\)"):
        cnn.set_weights({"conv1.weight": np.zeros((8, 1, 3, 3), np.float32)})
    with pytest.raises(DataError, match="'conv2.weight' is not in this model"):
        cnn.set_weights({"conv2.weight": np.zeros((8, 1, 3, 3), np.float32)})


def test_bad_batches_are_data_errors_naming_what_to_fix():
    tiny = model()
    features, labels = batch()
    with pytest.raises(DataError, match="label 3 is outside the model's classes 0..2"):
        tiny.train_step(features, np.full(len(features), 3))
    with pytest.raises(DataError, match="8 rows of features but 7 labels"):
        tiny.train_step(features, labels[:7])
    with pytest.raises(DataError, match=r"rows of shape \(4,\)"):
        tiny.logits(np.zeros((2, 5), np.float32))
    assert tiny.step == 0


def test_save_then_load_model_gives_the_same_predictions(tmp_path):
    cnn = model(CNN, optimizer="adam", lr=0.01)
    features, labels = images(32)
    for _ in range(3):
        cnn.train_step(features, labels)
    path = cnn.save(str(tmp_path / "cnn.safetensors"))
    same = load_model(path)
    assert same.engine == "torch" and same.step == 3
    assert not np.array_equal(same.get_weights()["batchnorm0.running_var"], np.ones(16, np.float32))  # trained stats travel
    assert np.array_equal(same.predict(features), cnn.predict(features))


def test_gradients_change_nothing_not_even_batchnorm_statistics():
    cnn = model(CNN)
    features, labels = images(16)
    before = cnn.get_weights()
    loss, grads = cnn.gradients(features, labels)
    assert loss > 0 and sorted(grads) == sorted(name for name in before if "running" not in name)
    assert all(np.array_equal(value, before[name]) for name, value in cnn.get_weights().items())
    assert cnn.step == 0


def test_batchnorm_running_statistics_follow_the_spec_momentum():
    spec = {"input_shape": [4], "layers": [{"type": "batchnorm", "name": "bn", "momentum": 0.8, "epsilon": 0.01},
                                           {"type": "dense", "name": "logits", "units": 3}]}
    normed = model(spec)
    features, labels = batch(rows=16, scale=3.0)
    normed.train_step(features + 2, labels)
    weights = normed.get_weights()
    np.testing.assert_allclose(weights["bn.running_mean"], 0.2 * (features + 2).mean(axis=0), rtol=1e-5)
    # torch's running variance is Bessel-corrected (MXNet's is not); the forward in eval mode is the same
    np.testing.assert_allclose(weights["bn.running_var"], 0.8 + 0.2 * features.var(axis=0, ddof=1), rtol=1e-5)
    assert normed.network.bn.eps == 0.01


def test_dropout_masks_come_from_the_seed_not_the_global_generator(torch_here):
    features, labels = images(16)
    first, second = model(CNN, seed=4), model(CNN, seed=4)
    first.train_step(features, labels)
    torch_here.manual_seed(123)  # any other draw in the process
    torch_here.rand(10)
    second.train_step(features, labels)
    assert all(np.array_equal(value, second.get_weights()[name]) for name, value in first.get_weights().items())


# --- training options: each one's effect -----------------------------------------------------

def observed_rates(tiny, steps: int) -> list[float]:
    """The rate each plain-sgd step applied: the update over the gradient it was computed from."""
    features, labels = batch()
    rates = []
    for _ in range(steps):
        _, grads = tiny.gradients(features, labels)
        before = tiny.get_weights()
        tiny.train_step(features, labels)
        delta = update(before, tiny.get_weights())
        dot = sum(float(np.sum(delta[name] * grads[name])) for name in grads)
        rates.append(-dot / global_norm(grads) ** 2)
    return rates


def test_warmup_ramps_the_first_rates_up_to_lr():
    rates = observed_rates(model(lr=0.1, warmup_steps=4), 6)
    assert rates == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rel=1e-4)


@pytest.mark.parametrize("schedule, expected", [
    ({"schedule": "step", "step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025]),
    ({"schedule": "cosine", "total_steps": 4, "min_lr": 0.01}, [0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)] + [0.01]),
])
def test_the_schedule_sets_each_step_rate(schedule, expected):
    tiny = model(lr=0.1, **schedule)
    assert observed_rates(tiny, 5) == pytest.approx(expected, rel=1e-4)
    assert expected == pytest.approx([learning_rate(tiny.options, step) for step in range(5)])


def test_clipping_bounds_the_global_norm_of_the_update():
    features, labels = batch()
    norms = {}
    for clip_norm in (0.05, 0.0):
        tiny = model(lr=1.0, clip_norm=clip_norm)
        _, grads = tiny.gradients(features, labels)
        before = tiny.get_weights()
        tiny.train_step(features, labels)
        norms[clip_norm] = global_norm(update(before, tiny.get_weights()))
    assert global_norm(grads) > 0.2
    assert norms[0.05] == pytest.approx(0.05, rel=1e-4)
    assert norms[0.0] == pytest.approx(global_norm(grads), rel=1e-4)


def test_weight_decay_shrinks_weights_whose_gradient_is_zero():
    tiny = model(lr=0.5, weight_decay=0.1)
    zeros, labels = np.zeros((8, 4), np.float32), batch()[1]
    _, grads = tiny.gradients(zeros, labels)
    assert not grads["hidden.weight"].any()  # no input, so no gradient: only the decay moves it
    before = tiny.get_weights()["hidden.weight"]
    tiny.train_step(zeros, labels)
    np.testing.assert_allclose(tiny.get_weights()["hidden.weight"], before * (1 - 0.5 * 0.1), rtol=1e-6)


def numpy_update(name: str, options: TrainOptions, weights: dict, grads: dict, slots: dict, step: int) -> None:
    """One step of ``name`` in float64 numpy, as the engine documents it (L2 added to the gradient)."""
    lr = learning_rate(options, step)
    for key, grad in grads.items():
        weight, slot = weights[key], slots.setdefault(key, {})
        if name == "sgd":
            decayed = grad + options.weight_decay * weight
            slot["buf"] = decayed if "buf" not in slot else options.momentum * slot["buf"] + decayed
            weights[key] = weight - lr * slot["buf"]
        elif name == "adam":
            decayed = grad + options.weight_decay * weight
            slot["m"] = options.beta1 * slot.get("m", 0) + (1 - options.beta1) * decayed
            slot["v"] = options.beta2 * slot.get("v", 0) + (1 - options.beta2) * decayed ** 2
            t = step + 1
            denom = np.sqrt(slot["v"]) / math.sqrt(1 - options.beta2 ** t) + options.epsilon
            weights[key] = weight - lr / (1 - options.beta1 ** t) * slot["m"] / denom
        else:  # dcasgd, MXNet's formula
            backup = slot.get("backup", weight)
            change = -lr * (grad + options.weight_decay * weight + options.dcasgd_lambda * grad * grad * (weight - backup))
            slot["mom"] = options.momentum * slot.get("mom", 0) + change
            slot["backup"] = weight
            weights[key] = weight + slot["mom"]


@pytest.mark.parametrize("options", [
    {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.01, "warmup_steps": 2},
    {"optimizer": "dcasgd", "lr": 0.1, "momentum": 0.5, "weight_decay": 0.01, "dcasgd_lambda": 2.0},
    {"optimizer": "dcasgd", "lr": 0.1, "dcasgd_lambda": 2.0, "schedule": "step", "step_size": 2, "gamma": 0.5},
], ids=["sgd-momentum", "adam", "dcasgd-momentum", "dcasgd-step"])
def test_each_optimizer_updates_as_numpy_computes_it(options):
    tiny = model(**options)
    weights = {name: value.astype(np.float64) for name, value in tiny.get_weights().items()}
    slots: dict = {}
    for step in range(4):
        features, labels = batch(seed=step)
        _, grads = tiny.gradients(features, labels)
        numpy_update(options["optimizer"], tiny.options, weights, grads, slots, step)
        tiny.train_step(features, labels)
    for name, value in tiny.get_weights().items():
        np.testing.assert_allclose(value, weights[name], rtol=1e-5, atol=1e-6, err_msg=name)
    changed = update(model(**options).get_weights(), tiny.get_weights())
    assert all(np.abs(delta).max() > 1e-3 for delta in changed.values())


def test_frozen_layers_get_no_update_and_keep_their_statistics():
    cnn = model(CNN, optimizer="adam", lr=0.01, weight_decay=0.1)
    cnn.freeze(["conv1", "batchnorm0"])
    features, labels = images(32)
    before = cnn.get_weights()
    assert not {"conv1.weight", "batchnorm0.weight"} & set(cnn.gradients(features, labels)[1])
    for _ in range(3):
        cnn.train_step(features, labels)
    after = cnn.get_weights()
    assert all(np.array_equal(after[name], before[name]) for name in after if name.startswith(("conv1.", "batchnorm0.")))
    assert not np.array_equal(after["hidden.weight"], before["hidden.weight"])
    cnn.freeze(["conv1"], frozen=False)
    cnn.train_step(features, labels)
    assert not np.array_equal(cnn.get_weights()["conv1.weight"], before["conv1.weight"])


def test_a_cnn_with_batchnorm_and_dropout_learns_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    features = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(0).permutation(len(features))
    train, test = order[:1400], order[1400:]
    cnn = model(CNN, seed=0, optimizer="adam", lr=0.01)
    rng = np.random.default_rng(1)
    for _ in range(3):
        for rows in np.array_split(rng.permutation(train), len(train) // 64):
            cnn.train_step(features[rows], digits.target[rows])
    assert cnn.evaluate(features[test], digits.target[test])["accuracy"] >= 0.9


def test_wrap_ddp_trains_through_the_wrapper_on_a_one_rank_gloo_group(torch_here, tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rendezvous", rank=0, world_size=1)
    try:
        tiny = model()
        wrapper = tiny.wrap_ddp()
        assert tiny.module is wrapper and wrapper.module is tiny.network
        before = tiny.get_weights()
        tiny.train_step(*batch())
        assert list(tiny.get_weights()) == list(before)
        assert all(not np.array_equal(value, before[name]) for name, value in tiny.get_weights().items())
        assert tiny.logits(batch()[0]).shape == (8, 3)
    finally:
        dist.destroy_process_group()


TWO_RANKS = """
import sys
import numpy as np
import torch
import torch.distributed as dist
from h3spark.train.engines.model import TrainOptions, build_model
from h3spark.train.engines.spec import ModelSpec
from tests.integration.torch.test_torch_model import TINY, batch

rank, rendezvous, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method="file://" + rendezvous, rank=rank, world_size=2)
model = build_model("torch", ModelSpec.from_dict(TINY), seed=0, options=TrainOptions(lr=0.5, momentum=0.9))
model.wrap_ddp(rank=rank)
for step in range(3):
    features, labels = batch(rows=16, seed=step)
    model.train_step(features[rank * 8:(rank + 1) * 8], labels[rank * 8:(rank + 1) * 8])
if rank == 0:
    model.logits(features)  # alone: inference never waits for the other rank
dist.barrier()
dist.destroy_process_group()
np.savez(out, **model.get_weights())
"""


def test_two_ddp_ranks_average_their_gradients_into_the_full_batch_step(tmp_path):
    ranks = [subprocess.Popen([sys.executable, "-c", TWO_RANKS, str(rank), str(tmp_path / "rendezvous"), str(tmp_path / f"rank{rank}.npz")],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    for process in ranks:
        output, _ = process.communicate(timeout=240)
        assert process.returncode == 0, output[-2000:]
    single = model(lr=0.5, momentum=0.9)
    for step in range(3):
        single.train_step(*batch(rows=16, seed=step))
    for rank in (0, 1):
        with np.load(tmp_path / f"rank{rank}.npz") as saved:
            for name, value in single.get_weights().items():
                np.testing.assert_allclose(saved[name], value, rtol=1e-5, atol=1e-6, err_msg=f"rank {rank} {name}")
