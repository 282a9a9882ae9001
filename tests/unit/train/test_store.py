"""The parameter-store contract, run on both stores: the local one (in this process) and the
MXNet KVStore one (on a ``local`` KVStore here; tests/integration/spark/train runs dist_sync
and dist_async). The Downpour example's tests are in test_downpour.py."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from h3spark.errors import StorageError, UsageError
from h3spark.train.store import AdamUpdater, DCASGDUpdater, LocalParameterStore, SGDUpdater
from tests.conftest import require


def kvstore_store(updater=None):
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    from h3spark.train.engines.mxnet_store import KVStoreParameterStore

    return KVStoreParameterStore("local", updater)


@pytest.fixture(params=[LocalParameterStore, kvstore_store], ids=["local", "kvstore"])
def new_store(request):
    """Makes a fresh store of the kind under test."""
    return request.param


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
    assert w.updates == 2


def test_adam_keeps_two_moments_and_its_checkpoint_resumes_the_same_run(new_store, tmp_path):
    adam = AdamUpdater(lr=0.1)
    store = new_store()
    assert store.create("by_name", (1,), "adam").updater == AdamUpdater()
    w = store.create("w", (3,), adam).init(np.zeros(3))
    assert sorted(w.slots()) == ["mean", "var"]
    w.push(np.array([2.0, -0.5, 0.0]))
    w.update()
    np.testing.assert_allclose(w.pull(), [-0.1, 0.1, 0.0], atol=1e-6)   # a first Adam step is lr * sign(grad)
    np.testing.assert_allclose(w.slots()["mean"], [0.2, -0.05, 0.0], rtol=1e-6)
    w.push(np.ones(3))
    w.update()
    saved = w.checkpoint(f"file://{tmp_path}/ckpt", step=2)
    copy = new_store().create("w", (3,), adam)
    assert copy.restore(f"file://{tmp_path}/ckpt") == 2 and copy.updates == 2
    for variable in (w, copy):                                # the bias correction needs the count too
        variable.push(np.full(3, 3.0))
        variable.update()
    np.testing.assert_array_equal(copy.pull(), w.pull())
    np.testing.assert_array_equal(copy.slots()["var"], w.slots()["var"])
    assert saved.endswith("w-00000002.npz")


def test_dcasgd_compensates_the_gradient_by_the_drift_since_the_pulled_backup(new_store):
    w = new_store().create("w", (2,), DCASGDUpdater(lr=1.0, lamda=0.5)).init(np.ones(2))
    np.testing.assert_array_equal(w.slots()["backup"], [1, 1])  # the initial value
    w.push(np.ones(2))
    w.update()
    np.testing.assert_allclose(w.pull(), [0, 0])              # no drift yet: plain SGD; the pull sets the backup
    np.testing.assert_array_equal(w.slots()["backup"], [0, 0])
    w.push(np.ones(2))
    w.update()                                                # no pull in between: the backup stays
    w.push(np.full(2, 2.0))
    w.update()                                                # drift -1: -(2 + 0.5 * 4 * (-1 - 0)) = 0
    np.testing.assert_allclose(w.pull(), [-1, -1])
    assert w.updates == 3


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
        assert v.updates == 1
    bare = w.save(f"file://{tmp_path}/bare.npz", with_slots=False)
    u = other.load("u", bare, SGDUpdater(lr=1.0, momentum=0.9))   # a new variable, its shape from the file
    assert u.shape == (3,) and u.updates == 0
    np.testing.assert_array_equal(u.pull(), w.pull())
    np.testing.assert_array_equal(u.slots()["momentum"], np.zeros(3))
    with pytest.raises(StorageError, match="which do not match its updater's .*create the variable with the saver's"):
        other.create("plain", (3,), SGDUpdater(lr=1.0)).load(full)
    with pytest.raises(StorageError, match=r"holds a value of shape \(3,\), but variable 'small' has shape \(2,\)"):
        other.create("small", (2,)).load(full)


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
    assert w.updates == 0


def test_store_checkpoint_writes_every_variable_and_restore_takes_the_latest(new_store, tmp_path):
    store = new_store(SGDUpdater(lr=1.0))
    a, b = store.create("a", (1,)).init(np.zeros(1)), store.create("b.weight", (2,)).init(np.ones(2))
    store.create("no_value_yet", (1,))
    root = f"file://{tmp_path}/ckpt"
    assert [uri.rsplit("/", 1)[1] for uri in store.checkpoint(root, 1)] == ["a-00000001.npz", "b.weight-00000001.npz"]
    a.push(np.ones(1))
    a.update()
    store.checkpoint(root, 12)
    a.init(np.full(1, 9.0))
    assert a.restore(root) == 12 and a.pull().tolist() == [-1.0]
    assert a.restore(root, step=1) == 1 and a.pull().tolist() == [0.0]
    assert sorted(path.name for path in tmp_path.joinpath("ckpt").iterdir())[-1] == "b.weight-00000012.npz"
    with pytest.raises(StorageError, match=r"no checkpoint of variable 'b.weight' for step 5 under .*steps \[1, 12\]"):
        b.restore(root, step=5)


def test_release_frees_the_name_and_ends_the_old_handle(new_store):
    store = new_store()
    w = store.create("w", (2,)).init(np.ones(2))
    w.push(np.ones(2))
    w.release()
    with pytest.raises(UsageError, match="no variable 'w'"):
        store.variable("w")
    with pytest.raises(UsageError, match=r"variable 'w' was released from this store .*create it again"):
        w.pull()
    again = store.create("w", (2,), SGDUpdater(lr=1.0)).init(np.full(2, 3.0))
    again.update()                                            # the old handle's pushed gradient is gone
    np.testing.assert_array_equal(again.pull(), [3, 3])
    again.push(np.ones(2))
    again.update()
    np.testing.assert_array_equal(again.pull(), [2, 2])
    w.release()                                               # a stale handle does not release the new variable
    assert store.variable("w") is again
    with pytest.raises(UsageError, match="was released"):
        w.init(np.ones(2))                                    # nor writes into it


def test_bad_input_is_refused_with_what_where_and_how_to_fix(new_store, tmp_path):
    store = new_store()
    w = store.create("w", (2, 2))
    with pytest.raises(UsageError, match="has no value yet; call init"):
        w.pull()
    with pytest.raises(UsageError, match="has no value yet"):
        w.push(np.zeros((2, 2)))
    with pytest.raises(UsageError, match=r"grad of variable 'w' in this store \(.*Store.*\) must have shape \(2, 2\). "
                                         r"Got \(3,\) instead; reshape it"):
        w.init(np.zeros((2, 2))).push(np.zeros(3))
    with pytest.raises(UsageError, match="already exists in this store .*release it first"):
        store.create("w", (2, 2))
    with pytest.raises(UsageError, match="unknown updater 'adagrad' for variable 'v'; use one of 'sgd', 'adam', 'dcasgd'"):
        store.create("v", (1,), "adagrad")
    with pytest.raises(UsageError, match="unknown updater 'rmsprop' for the default of this store"):
        new_store("rmsprop")
    with pytest.raises(UsageError, match="name 'a/b' .* must be letters"):
        store.create("a/b", (1,))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(StorageError, match="junk.npz is not a variable saved by h3spark"):
        store.load("junk", f"file://{tmp_path}/junk.npz")
    assert "junk" not in store.names()
    with pytest.raises(UsageError, match="no variable 'x' in this store"):
        store.variable("x")


def test_the_store_updater_is_the_default_of_create(new_store):
    store = new_store()
    store.default_updater = SGDUpdater(lr=0.25)
    w = store.create("w", (1,)).init(np.ones(1))
    w.push(np.ones(1))
    w.update()
    np.testing.assert_allclose(w.pull(), [0.75])
