"""The parameter-store contract, run on both stores: the local one (in this process) and the
MXNet KVStore one (on a ``local`` KVStore here; tests/integration/spark/train runs dist_async).
Then the Downpour example, which is written against that API."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from h3spark.errors import StorageError, UsageError
from h3spark.train.store import LocalParameterStore, SGDUpdater
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]


def kvstore_store():
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    from h3spark.train.engines.mxnet_store import KVStoreParameterStore

    return KVStoreParameterStore("local")


@pytest.fixture(params=[LocalParameterStore, kvstore_store], ids=["local", "kvstore"])
def new_store(request):
    """Makes a fresh store of the kind under test."""
    return request.param


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_push_changes_the_value_only_at_update_and_momentum_is_a_slot(new_store):
    w = new_store().create("w", (2,), SGDUpdater(lr=0.5, momentum=0.5)).init(np.ones(2))
    w.push(np.ones(2))
    w.push(np.ones(2))
    np.testing.assert_array_equal(w.pull(), [1, 1])
    w.update()
    np.testing.assert_allclose(w.pull(), [0, 0])              # 1 - 0.5 * (1 + 1)
    np.testing.assert_allclose(w.slots()["momentum"], [-1, -1])
    w.push(np.zeros(2))
    w.update()
    np.testing.assert_allclose(w.pull(), [-0.5, -0.5])        # momentum carries on
    w.update()                                                # nothing pushed: nothing changes
    np.testing.assert_allclose(w.pull(), [-0.5, -0.5])


def test_save_with_slots_and_checkpoint_round_trip_into_a_fresh_store(new_store, tmp_path):
    w = new_store().create("w", (3,), SGDUpdater(lr=1.0, momentum=0.9)).init(seed=1)
    w.push(np.ones(3))
    w.update()
    full = w.save(f"file://{tmp_path}/full.npz")
    ckpt = w.checkpoint(f"file://{tmp_path}/ckpt", step=7)
    assert ckpt.endswith("w-00000007.npz")
    other = new_store()
    for name, uri in (("v", full), ("c", ckpt)):
        v = other.create(name, (3,), SGDUpdater(lr=1.0, momentum=0.9)).load(uri)
        np.testing.assert_array_equal(v.pull(), w.pull())
        np.testing.assert_array_equal(v.slots()["momentum"], w.slots()["momentum"])
    bare = w.save(f"file://{tmp_path}/bare.npz", with_slots=False)
    u = other.create("u", (3,), SGDUpdater(lr=1.0, momentum=0.9)).load(bare)
    np.testing.assert_array_equal(u.slots()["momentum"], np.zeros(3))
    with pytest.raises(StorageError, match="do not match its updater"):
        other.create("plain", (3,), SGDUpdater(lr=1.0)).load(full)


def test_init_and_load_replace_the_value_of_a_variable_that_has_one(new_store, tmp_path):
    w = new_store().create("w", (2,), SGDUpdater(lr=1.0, momentum=0.5)).init(np.ones(2))
    saved = w.save(f"file://{tmp_path}/w.npz")
    w.push(np.ones(2))
    w.update()
    np.testing.assert_allclose(w.pull(), [0, 0])
    w.load(saved)                                             # back to the saved value and slots
    np.testing.assert_array_equal(w.pull(), [1, 1])
    np.testing.assert_array_equal(w.slots()["momentum"], [0, 0])
    w.push(np.ones(2))
    w.update()
    np.testing.assert_allclose(w.pull(), [0, 0])              # updates go on from the loaded value
    w.init(np.full(2, 5.0))
    np.testing.assert_array_equal(w.pull(), [5, 5])
    np.testing.assert_array_equal(w.slots()["momentum"], [0, 0])


def test_release_frees_the_name_and_ends_the_old_handle(new_store):
    store = new_store()
    w = store.create("w", (2,)).init(np.ones(2))
    w.push(np.ones(2))
    w.release()
    with pytest.raises(UsageError, match="no variable 'w'"):
        store.variable("w")
    with pytest.raises(UsageError, match="variable 'w' was released from this store"):
        w.pull()
    again = store.create("w", (2,), SGDUpdater(lr=1.0)).init(np.full(2, 3.0))
    again.update()                                            # the old handle's pushed gradient is gone
    np.testing.assert_array_equal(again.pull(), [3, 3])
    again.push(np.ones(2))
    again.update()
    np.testing.assert_array_equal(again.pull(), [2, 2])
    w.release()                                               # a stale handle does not release the new variable
    assert store.variable("w") is again


def test_bad_input_is_refused_with_the_variable_name(new_store):
    store = new_store()
    w = store.create("w", (2, 2))
    with pytest.raises(UsageError, match="has no value yet"):
        w.pull()
    with pytest.raises(UsageError, match="has no value yet"):
        w.push(np.zeros((2, 2)))
    with pytest.raises(UsageError, match=r"grad of variable 'w' must have shape \(2, 2\). Got \(3,\) instead"):
        w.init(np.zeros((2, 2))).push(np.zeros(3))
    with pytest.raises(UsageError, match="already exists"):
        store.create("w", (2, 2))


def test_the_store_updater_is_the_default_of_create(new_store):
    store = new_store()
    store.default_updater = SGDUpdater(lr=0.25)
    w = store.create("w", (1,)).init(np.ones(1))
    w.push(np.ones(1))
    w.update()
    np.testing.assert_allclose(w.pull(), [0.75])


def test_downpour_example_learns_with_concurrent_workers():
    example = load_example("downpour_sgd")
    features, labels = example.blobs(512, seed=99)
    assert example.accuracy(np.zeros((20, 3), np.float32), features, labels) < 0.5
    result = example.run_threads(num_workers=3)
    assert result["test_accuracy"] > 0.9
    assert min(result["worker_accuracy"]) > 0.9
