"""A plain MXNet distributed script: no h3spark imports, so it runs under MXNet's
``tools/launch.py --launcher local -n 2 -s 1 python examples/mxnet_dist_mlp.py`` and,
unchanged, under ``h3spark launch -n 2 -s 1 -- python examples/mxnet_dist_mlp.py``.

MLP 784-256-10 on synthetic 784-wide data (10 Gaussian clusters), batch 256. Each worker
trains on its own shard (by kv.rank); worker 0 prints one JSON line starting with
``RESULT`` holding samples/s, the time to reach ``--target-accuracy``, and two wall-clock times
(``time.time()``) that measure a launcher's start-up: ``started_at``, when the script began (before
importing mxnet), and ``first_step_at``, when its first step finished.
"""

import argparse
import json
import time

STARTED_AT = time.time()

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402


def synthetic(rows, seed, width=784, classes=10):
    rng = np.random.default_rng(1234)
    centers = rng.normal(0, 1, (classes, width)).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    features = centers[labels] + rng.normal(0, 4.0, (rows, width)).astype(np.float32)
    return features, labels.astype(np.float32)


def build(seed):
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(256, activation="relu"), gluon.nn.Dense(10))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


def accuracy(net, features, labels):
    predictions = net(mx.nd.array(features)).argmax(axis=1).asnumpy()
    return float((predictions == labels).mean())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kvstore", default="dist_sync")
    parser.add_argument("--rows", type=int, default=40960, help="training rows per worker")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--target-accuracy", type=float, default=0.9)
    args = parser.parse_args()

    kv = mx.kv.create(args.kvstore)
    features, labels = synthetic(args.rows, seed=100 + kv.rank)
    val_features, val_labels = synthetic(2048, seed=99)
    net = build(seed=7)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.lr, "momentum": 0.9}, kvstore=kv)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    started, samples, reached_s, first_step_at = time.perf_counter(), 0, None, None
    for epoch in range(args.epochs):
        for start in range(0, args.rows - args.batch_size + 1, args.batch_size):
            data = mx.nd.array(features[start:start + args.batch_size])
            label = mx.nd.array(labels[start:start + args.batch_size])
            with autograd.record():
                loss = loss_fn(net(data), label)
            loss.backward()
            trainer.step(args.batch_size)
            if first_step_at is None:
                mx.nd.waitall()
                first_step_at = time.time()
            samples += args.batch_size
            if reached_s is None and samples % (args.batch_size * 20) == 0:
                if accuracy(net, val_features, val_labels) >= args.target_accuracy:
                    reached_s = time.perf_counter() - started
    mx.nd.waitall()
    elapsed = time.perf_counter() - started
    result = {"rank": kv.rank, "num_workers": kv.num_workers, "kvstore": args.kvstore, "samples": samples,
              "seconds": round(elapsed, 3), "samples_per_s": round(samples / elapsed, 1),
              "time_to_accuracy_s": None if reached_s is None else round(reached_s, 3),
              "val_accuracy": round(accuracy(net, val_features, val_labels), 4), "started_at": round(STARTED_AT, 3),
              "first_step_at": round(first_step_at, 3)}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
