"""The Downpour master: pushes through the parameter store, DC-ASGD with the true delay, refusals, settings."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.config import DownpourConfig
from h3spark.errors import ConfigError, UsageError
from h3spark.train.engines.model import TrainOptions
from h3spark.train.engines.numpy_model import NumpyModel
from h3spark.web import GRADIENTS, DownpourMaster, Frame
from tests.unit.web.conftest import downpour_config, gradient


def push(master, grad, version, rows=16, worker=None):
    return master.apply(Frame(GRADIENTS, version, 1, rows, np.asarray(grad, np.float32)), worker)


def test_a_fresh_push_is_minus_lr_times_the_gradient_in_the_store():
    master = DownpourMaster(downpour_config(optimizer="sgd", lr=0.1), None)
    version, w0 = master.pull()
    g = gradient(master, 1)
    assert push(master, g, version) == {"applied": True, "version": 1, "delay": 0}
    stored = master.layout.flatten({variable.name: variable.pull() for variable in master.variables})
    assert np.allclose(stored, w0 - 0.1 * g, atol=1e-6) and np.array_equal(stored, master.current)
    assert master.variables[0].updates == 1 and (master.applied, master.samples) == (1, 16)


def test_dcasgd_compensates_with_the_weights_the_gradient_was_computed_on_not_the_last_pulled():
    master = DownpourMaster(downpour_config(optimizer="dcasgd", lr=0.1, dcasgd_lambda=0.5), None)
    _, w0 = master.pull()                         # worker A computes on version 0
    for seed in (1, 2, 3):                        # three pushes from others, each on the newest weights
        push(master, gradient(master, seed), master.pull()[0])
    w3 = master.current.astype(np.float64)
    g = gradient(master, 9).astype(np.float64)
    assert push(master, g, 0) == {"applied": True, "version": 4, "delay": 3}
    expected = w3 - 0.1 * (g + 0.5 * g * g * (w3 - w0))
    assert np.allclose(master.current, expected, atol=1e-5)
    assert not np.allclose(master.current, w3 - 0.1 * g, atol=1e-3)  # the compensation is there


def test_plain_sgd_applies_a_stale_gradient_as_it_is():
    master = DownpourMaster(downpour_config(optimizer="sgd", lr=0.1), None)
    master.pull()
    push(master, gradient(master, 1), 0)
    w1, g = master.current.copy(), gradient(master, 2)
    assert push(master, g, 0)["delay"] == 1
    assert np.allclose(master.current, w1 - 0.1 * g, atol=1e-6)


def test_pushes_older_than_max_delay_or_on_weights_never_handed_out_are_refused():
    master = DownpourMaster(downpour_config(max_delay=2), None)
    master.pull()
    for seed in range(3):
        push(master, gradient(master, seed), master.pull()[0])
    before = master.current.copy()
    too_old = push(master, gradient(master, 7), 0)
    assert too_old["applied"] is False and "3 updates old (max_delay 2)" in too_old["reason"]
    assert "did not hand out" in push(master, gradient(master, 7), 99)["reason"]
    assert master.refused == 2 and np.array_equal(before, master.current)  # nothing refused changed the weights


def test_a_version_nobody_pulled_is_refused_even_within_max_delay():
    master = DownpourMaster(downpour_config(max_delay=10), None)
    version, _ = master.pull()
    push(master, gradient(master, 1), version)            # version 1 exists, but nobody pulled it
    refused = push(master, gradient(master, 2), 1)
    assert refused["applied"] is False and "did not hand out (it is at 1)" in refused["reason"]


def test_clipping_l2_and_warm_up_shape_the_change():
    master = DownpourMaster(downpour_config(optimizer="sgd", lr=0.2, clip_norm=1.0, weight_decay=0.1,
                                            warmup_steps=4), None)
    version, w0 = master.pull()
    g = gradient(master, 3).astype(np.float64)
    g *= 10 / np.linalg.norm(g)                              # norm 10, clipped to 1
    push(master, g, version)
    rate = 0.2 * 1 / 4                                       # the first of 4 warm-up updates
    expected = w0 - rate * (g / 10 + 0.1 * w0)
    assert np.allclose(master.current, expected, atol=1e-6)


def test_momentum_lives_in_the_store_updater():
    master = DownpourMaster(downpour_config(optimizer="sgd", lr=0.1, momentum=0.9), None)
    g1, g2 = gradient(master, 1), gradient(master, 2)
    push(master, g1, master.pull()[0])
    w1 = master.current.copy()
    push(master, g2, master.pull()[0])
    assert np.allclose(master.current, w1 - 0.1 * (g2 + 0.9 * g1), atol=1e-5)
    assert set(master.variables[0].slots()) == {"momentum"}


def test_a_push_of_model_contract_gradients_is_the_engines_own_sgd_step():
    master = DownpourMaster(downpour_config(optimizer="sgd", lr=0.3), None)
    features = np.random.default_rng(0).random((8, 6), dtype=np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    version, flat = master.pull()
    replica = NumpyModel(master.spec, options=TrainOptions(optimizer="sgd", lr=0.3))
    replica.set_weights(master.layout.unflatten(flat))
    _, grads = replica.gradients(features, labels)
    push(master, master.layout.flatten(grads), version)
    replica.train_step(features, labels)
    assert np.allclose(master.current, master.layout.flatten(replica.get_weights()), atol=1e-6)


def test_live_settings_are_checked_and_change_the_next_update():
    master = DownpourMaster(downpour_config(optimizer="sgd", lr=0.1), None)
    assert master.set({"lr": 0.5, "max_delay": 4})["lr"] == 0.5
    version, w0 = master.pull()
    g = gradient(master, 5)
    push(master, g, version)
    assert np.allclose(master.current, w0 - 0.5 * g, atol=1e-6)
    for bad, words in [({"momentum": 0.9}, "cannot be set while the master runs"), ({"lr": 0}, "lr must be a number"),
                       ({"lr": True}, "lr must be"), ({"warmup_steps": 1.5}, "an integer"),
                       ({"clip_norm": float("nan")}, "clip_norm must be")]:
        with pytest.raises(UsageError, match=words):
            master.set(bad)
    assert master.hyper.lr == 0.5 and master.hyper.max_delay == 4


def test_reset_draws_weights_from_the_new_init_and_refuses_pushes_on_the_old_ones():
    master = DownpourMaster(downpour_config(), None)
    old_version, _ = master.pull()
    version = master.reset(mean=1.0, std=0.01)
    weight = master.layout.unflatten(master.current)["hidden0.weight"]
    assert version == old_version + 1 and abs(weight.mean() - 1.0) < 0.01 and weight.std() < 0.02
    assert push(master, gradient(master, 1), old_version)["applied"] is False
    assert push(master, gradient(master, 1), master.pull()[0])["applied"] is True
    with pytest.raises(UsageError, match="std must be > 0"):
        master.reset(0.0, 0.0)
    with pytest.raises(UsageError, match="finite number"):
        master.reset(None, 0.1)


def digits_config(**training):
    return DownpourConfig.model_validate({"training": training, "data": {"shards": 3}})


def test_workers_get_the_least_held_shard_and_their_settings_are_checked(digits_data):
    master = DownpourMaster(digits_config(), digits_data)
    workers = [master.join({}) for _ in range(4)]
    assert [worker.shard for worker in workers] == [0, 1, 2, 0]
    master.leave(workers[1].id)
    assert master.join({"batch_size": 8}).shard == 1 and master.join({}, own_data=True).shard is None
    assert master.join({"n_push": 4}).settings["n_push"] == 4
    for bad in ({"lr": 0.1}, {"batch_size": 0}, {"epochs": 1.5}, {"n_fetch": True}):
        with pytest.raises(UsageError):
            master.join(bad)


def test_the_master_scores_its_weights_on_the_held_out_rows_and_reports_as_an_actor(digits_data):
    master = DownpourMaster(digits_config(), digits_data)
    scores = master.evaluate()
    assert scores["rows"] == len(digits_data.holdout_labels) == 359 and scores["version"] == 0
    status = master.status()
    assert status["actor"] == "downpour" and status["evaluated"]["accuracy"] == scores["accuracy"]
    probabilities, version = master.predict(digits_data.holdout_features[:2])
    assert probabilities.shape == (2, 10) and version == 0


def test_a_model_that_does_not_take_the_pipelines_rows_is_a_config_error(digits_data):
    with pytest.raises(ConfigError, match=r"takes 6 values a row, but the pipeline makes rows of 64 .* input_shape: \[64\]"):
        DownpourMaster(downpour_config(), digits_data)
