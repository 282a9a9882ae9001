"""The Downpour example (examples/downpour_sgd.py) over a spec'd numpy model, on both stores:
threads over the local store, and one worker on a ``local`` KVStore. The dist_async runs (worker
processes, and the MXNet engine) are in tests/integration/spark/train/test_store_kvstore.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]
ACCURACY = 0.9  # digits' test rows, 10 classes: the untrained replica is at about 0.1
# 300 steps a worker: with the example's 150, adam once ended at 0.897 on a loaded machine (the threads' interleaving,
# so the gradients' staleness, follows the load); 8 runs each here: adam and dcasgd 0.965-0.982 at 300 steps
STEPS = 300


def load_example():
    spec = importlib.util.spec_from_file_location("downpour_sgd", ROOT / "examples" / "downpour_sgd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    module = load_example()
    module.digits()  # scikit-learn's import, once
    return module


def test_downpour_on_threads_over_the_local_store_learns_digits(example):
    model, _ = example.build("numpy", "sgd", 0.1)
    _, _, test_features, test_labels = example.digits()
    assert model.evaluate(test_features, test_labels)["accuracy"] < 0.3
    result = example.run_threads("numpy", num_workers=3, steps=STEPS)
    assert result["test_accuracy"] > ACCURACY, result


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.01), ("dcasgd", 0.1)])
def test_downpour_learns_with_the_updaters_that_have_slots(example, optimizer, lr):
    result = example.run_threads("numpy", num_workers=2, optimizer=optimizer, lr=lr, steps=STEPS)
    assert result["test_accuracy"] > ACCURACY, result


def test_downpour_on_a_kvstore_learns_digits(example):
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    result = example.run_kvstore("local", "numpy", steps=300)  # one worker, so deterministic: 0.957
    assert result["rank"] == 0 and result["test_accuracy"] > ACCURACY, result


def test_the_workers_push_and_pull_as_often_as_asked(example):
    from h3spark.train.store import LocalParameterStore, SGDUpdater

    class CountingStore(LocalParameterStore):
        pulls = pushes = 0

        def _pull(self, variable):
            type(self).pulls += 1
            return super()._pull(variable)

        def _push(self, variable, grad):
            type(self).pushes += 1
            super()._push(variable, grad)

    store = CountingStore()
    model, _ = example.build("numpy", "sgd", 0.1)
    variables = example.create_variables(store, model, SGDUpdater(lr=0.1))
    features, labels, _, _ = example.digits()
    example.downpour_worker(store, model, features, labels, steps=12, n_fetch=4, n_push=3)
    assert (store.pulls, store.pushes) == (3 * len(variables), 4 * len(variables))
    assert sorted(variable.name for variable in variables) == ["hidden0.bias", "hidden0.weight", "logits.bias",
                                                                 "logits.weight"]

