"""Downpour SGD (Dean et al., 2012) on the h3spark parameter-store API, over a spec'd model.

Each worker holds a replica of a model built from a ModelSpec by any engine with the model
contract (``numpy``, ``mxnet``, ``torch``). Every ``n_fetch`` steps it pulls the weights into
its replica; every step it computes the gradients of a minibatch of its own shard
(``Model.gradients``) and adds them up; every ``n_push`` steps it pushes the sum, which the
store's updater (sgd, adam or dcasgd, from the model's TrainOptions) applies. The same
``downpour_worker`` runs on threads over a LocalParameterStore and on MXNet's dist_async
KVStore in worker processes:

    python examples/downpour_sgd.py                          # 3 threads, numpy engine, sgd
    python examples/downpour_sgd.py --engine mxnet --optimizer adam --lr 0.01
    python examples/downpour_sgd.py --kvstore                # 2 workers + 1 server on local Spark

The data is scikit-learn's digits (shipped with the package): 8x8 images, 10 classes.
The last line printed is JSON with each worker's last loss and the test accuracy.
"""

from __future__ import annotations

import argparse
import json
import threading

import numpy as np

HIDDEN = (32,)


def digits(worker: int = 0, num_workers: int = 1):
    """Worker ``worker``'s shard of the digits training rows, and the test rows (397, the same for all)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    features, labels = (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:1400], order[1400:]
    shard = train[worker::num_workers]
    return features[shard], labels[shard], features[test], labels[test]


def build(engine: str, optimizer: str, lr: float, seed: int = 0):
    """The model replica (an MLP spec on 8x8 digits) and the matching store updater."""
    from h3spark.train.engines.model import TrainOptions, build_model
    from h3spark.train.engines.spec import mlp_spec
    from h3spark.train.store import updater_from_options

    options = TrainOptions(optimizer=optimizer, lr=lr)
    return build_model(engine, mlp_spec([1, 8, 8], list(HIDDEN), classes=10), seed=seed, options=options), \
        updater_from_options(options)


def create_variables(store, model, updater) -> list:
    """One variable per trainable weight, initialised from the replica (the same seed on every
    worker: on a dist KVStore ``init`` is collective and worker 0's value wins)."""
    probe_features = np.zeros((1, model.spec.features), np.float32)
    _, grads = model.gradients(probe_features, np.zeros(1, np.int64))
    weights = model.get_weights()
    return [store.create(name, weights[name].shape, updater).init(weights[name]) for name in sorted(grads)]


def downpour_worker(store, model, features, labels, steps: int = 150, n_fetch: int = 2, n_push: int = 2,
                    batch_size: int = 32, seed: int = 0) -> float:
    """Pull every ``n_fetch`` steps, push the summed gradients every ``n_push``; return the last loss."""
    variables = [store.variable(name) for name in store.names()]
    rng = np.random.default_rng(seed)
    summed: dict[str, np.ndarray] = {}
    loss = float("nan")
    for step in range(steps):
        if step % n_fetch == 0:
            model.set_weights({variable.name: variable.pull() for variable in variables})
        rows = rng.integers(0, len(labels), batch_size)
        loss, grads = model.gradients(features[rows], labels[rows])
        for name, grad in grads.items():
            summed[name] = summed[name] + grad if name in summed else grad
        if (step + 1) % n_push == 0 or step == steps - 1:
            for variable in variables:
                variable.push(summed.pop(variable.name))
                variable.update()
    return float(loss)


def test_accuracy(store, model, features, labels) -> float:
    model.set_weights({name: store.variable(name).pull() for name in store.names()})
    return model.evaluate(features, labels)["accuracy"]


def run_threads(engine: str = "numpy", num_workers: int = 3, optimizer: str = "sgd", lr: float = 0.1, **loop) -> dict:
    """Downpour with ``num_workers`` threads over one LocalParameterStore."""
    from h3spark.train.store import LocalParameterStore

    store = LocalParameterStore()
    built = [build(engine, optimizer, lr) for _ in range(num_workers)]
    replicas = [model for model, _ in built]
    create_variables(store, replicas[0], built[0][1])
    losses = [float("nan")] * num_workers

    def work(rank: int) -> None:
        features, labels, _, _ = digits(rank, num_workers)
        losses[rank] = downpour_worker(store, replicas[rank], features, labels, seed=rank, **loop)

    threads = [threading.Thread(target=work, args=(rank,), name=f"downpour-{rank}") for rank in range(num_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, _, test_features, test_labels = digits()
    return {"worker_loss": losses, "test_accuracy": test_accuracy(store, replicas[0], test_features, test_labels)}


def run_kvstore(kvstore: str = "dist_async", engine: str = "numpy", optimizer: str = "sgd", lr: float = 0.1,
                **loop) -> dict:
    """One worker of the KVStore version (run by h3spark.train.distributed, or alone with ``local``)."""
    from h3spark.train.engines.mxnet_store import KVStoreParameterStore

    store = KVStoreParameterStore(kvstore)
    model, updater = build(engine, optimizer, lr)
    create_variables(store, model, updater)                   # every worker: init is collective
    features, labels, test_features, test_labels = digits(store.rank, store.num_workers)
    loss = downpour_worker(store, model, features, labels, seed=store.rank, **loop)
    return {"rank": store.rank, "loss": loss, "test_accuracy": test_accuracy(store, model, test_features, test_labels)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kvstore", action="store_true", help="2 worker processes + 1 server (dist_async) on local Spark")
    parser.add_argument("--engine", default="numpy", choices=["numpy", "mxnet", "torch"])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "dcasgd"])
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args(argv)
    settings = {"engine": args.engine, "optimizer": args.optimizer, "lr": args.lr, "steps": args.steps}
    if args.kvstore:
        from h3spark.train import distributed

        print(json.dumps(distributed(run_kvstore, num_workers=2, num_servers=1, kvstore="dist_async", kwargs=settings,
                                     env={"MXNET_ENGINE_TYPE": "NaiveEngine"})))
    else:
        print(json.dumps(run_threads(**settings)))


if __name__ == "__main__":
    main()
