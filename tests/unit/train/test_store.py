"""The parameter-store API on the local store, and the Downpour example written against it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from h3spark.errors import StorageError, UsageError
from h3spark.train.store import LocalParameterStore, SGDUpdater

ROOT = Path(__file__).resolve().parents[3]


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_push_changes_the_value_only_at_update_and_momentum_is_a_slot():
    store = LocalParameterStore()
    w = store.create("w", (2,), SGDUpdater(lr=0.5, momentum=0.5)).init(np.ones(2))
    w.push(np.ones(2))
    w.push(np.ones(2))
    np.testing.assert_array_equal(w.pull(), [1, 1])
    w.update()
    np.testing.assert_allclose(w.pull(), [0, 0])              # 1 - 0.5 * (1 + 1)
    np.testing.assert_allclose(w.slots()["momentum"], [-1, -1])
    w.push(np.zeros(2))
    w.update()
    np.testing.assert_allclose(w.pull(), [-0.5, -0.5])        # momentum carries on


def test_save_with_and_without_slots_load_checkpoint_and_release(tmp_path):
    store = LocalParameterStore()
    w = store.create("w", (3,), SGDUpdater(lr=1.0, momentum=0.9)).init(seed=1)
    w.push(np.ones(3))
    w.update()
    full = w.save(f"file://{tmp_path}/full.npz")
    bare = w.save(f"file://{tmp_path}/bare.npz", with_slots=False)
    ckpt = w.checkpoint(f"file://{tmp_path}/ckpt", step=7)
    assert ckpt.endswith("w-00000007.npz")
    other = LocalParameterStore()
    v = other.create("w", (3,), SGDUpdater(lr=1.0, momentum=0.9)).load(full)
    np.testing.assert_array_equal(v.pull(), w.pull())
    np.testing.assert_array_equal(v.slots()["momentum"], w.slots()["momentum"])
    u = other.create("u", (3,), SGDUpdater(lr=1.0, momentum=0.9)).load(bare)
    np.testing.assert_array_equal(u.slots()["momentum"], np.zeros(3))
    with pytest.raises(StorageError, match="do not match its updater"):
        other.create("plain", (3,), SGDUpdater(lr=1.0)).load(full)
    w.release()
    with pytest.raises(UsageError, match="no variable 'w'"):
        store.variable("w")


def test_bad_input_is_refused_with_the_variable_name():
    store = LocalParameterStore()
    w = store.create("w", (2, 2))
    with pytest.raises(UsageError, match="has no value yet"):
        w.pull()
    with pytest.raises(UsageError, match=r"grad of variable 'w' must have shape \(2, 2\). Got \(3,\) instead"):
        w.init(np.zeros((2, 2))).push(np.zeros(3))
    with pytest.raises(UsageError, match="already exists"):
        store.create("w", (2, 2))


def test_downpour_example_learns_with_concurrent_workers():
    example = load_example("downpour_sgd")
    features, labels = example.blobs(512, seed=99)
    assert example.accuracy(np.zeros((20, 3), np.float32), features, labels) < 0.5
    result = example.run_threads(num_workers=3)
    assert result["test_accuracy"] > 0.9
    assert min(result["worker_accuracy"]) > 0.9
