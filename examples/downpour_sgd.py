"""Downpour-style asynchronous SGD on the h3spark parameter-store API.

Each worker repeatedly pulls the weights, computes a softmax-regression gradient on its
own shard for a few minibatches, and pushes the summed gradient; the store's updater
applies it. The same ``downpour_worker`` runs on threads over a LocalParameterStore
(``python examples/downpour_sgd.py``) and on MXNet's dist_async KVStore under the
launcher (``python examples/downpour_sgd.py --kvstore``, which calls h3spark.train.distributed).
"""

from __future__ import annotations

import argparse
import json
import threading

import numpy as np


def blobs(rows: int, width: int = 20, classes: int = 3, seed: int = 0):
    centers = np.random.default_rng(42).normal(0, 2, (classes, width))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    return (centers[labels] + rng.normal(0, 1, (rows, width))).astype(np.float32), labels


def gradient(weights: np.ndarray, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    logits = features @ weights
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    probs[np.arange(len(labels)), labels] -= 1
    return (features.T @ probs / len(labels)).astype(np.float32)


def accuracy(weights: np.ndarray, features: np.ndarray, labels: np.ndarray) -> float:
    return float(((features @ weights).argmax(axis=1) == labels).mean())


def downpour_worker(store, rank: int, steps: int = 60, fetch_every: int = 3, batch_size: int = 32) -> float:
    """Pull every ``fetch_every`` batches, push the accumulated gradient; return this shard's accuracy."""
    features, labels = blobs(1024, seed=rank + 1)
    w = store.variable("w")
    weights = w.pull()
    for step in range(steps):
        start = (step * batch_size) % (len(labels) - batch_size)
        grad = gradient(weights, features[start:start + batch_size], labels[start:start + batch_size])
        w.push(grad)
        weights -= w.updater.lr * grad  # local progress between fetches, as in Downpour
        if (step + 1) % fetch_every == 0:
            w.update()
            weights = w.pull()
    w.update()
    return accuracy(w.pull(), features, labels)


def run_threads(num_workers: int = 3, lr: float = 0.1) -> dict:
    from h3spark.train.store import LocalParameterStore, SGDUpdater

    store = LocalParameterStore()
    store.create("w", shape=(20, 3), updater=SGDUpdater(lr=lr)).init(np.zeros((20, 3), np.float32))
    results = [0.0] * num_workers
    threads = [threading.Thread(target=lambda r=r: results.__setitem__(r, downpour_worker(store, r)))
               for r in range(num_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    test_features, test_labels = blobs(512, seed=99)
    return {"worker_accuracy": results, "test_accuracy": accuracy(store.variable("w").pull(), test_features, test_labels)}


def kvstore_worker(lr: float = 0.1) -> dict:
    """One worker process of the dist_async version (run by h3spark.train.distributed)."""
    from h3spark.train.engines.mxnet_store import KVStoreParameterStore
    from h3spark.train.store import SGDUpdater

    store = KVStoreParameterStore("dist_async", SGDUpdater(lr=lr))  # the updater of the variables it creates
    store.create("w", shape=(20, 3)).init(np.zeros((20, 3), np.float32))  # every worker: init is collective
    shard_accuracy = downpour_worker(store, store.rank)
    test_features, test_labels = blobs(512, seed=99)
    return {"rank": store.rank, "shard_accuracy": shard_accuracy,
            "test_accuracy": accuracy(store.variable("w").pull(), test_features, test_labels)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--kvstore", action="store_true", help="2 worker processes + 1 server on local Spark")
    args = parser.parse_args()
    if args.kvstore:
        from h3spark.train import distributed

        print(json.dumps(distributed(kvstore_worker, num_workers=2, num_servers=1, kvstore="dist_async")))
    else:
        print(json.dumps(run_threads()))
