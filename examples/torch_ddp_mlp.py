"""A plain PyTorch DDP script: no h3spark imports, so it runs under ``torchrun --nproc-per-node 2``
and, unchanged, under ``h3spark launch --kind torch -n 2 [--local] -- python examples/torch_ddp_mlp.py``
(both set MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and LOCAL_RANK).

MLP 784-256-10 on synthetic 784-wide data (10 Gaussian clusters), batch 256, gloo on CPU or
NCCL with ``--cuda``. Each rank trains on its own shard (rows ``rank::world_size``); rank 0
prints one JSON line starting with ``RESULT`` holding samples/s and the final accuracy.
"""

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


def synthetic(rows, width=784, classes=10):
    rng = np.random.default_rng(1234)
    centers = rng.normal(0, 1, (classes, width)).astype(np.float32)
    labels = rng.integers(0, classes, rows)
    return centers[labels] + rng.normal(0, 2, (rows, width)).astype(np.float32), labels.astype(np.int64)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--cuda", action="store_true")
    args = parser.parse_args()
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if args.cuda else torch.device("cpu")
    dist.init_process_group("nccl" if args.cuda else "gloo", rank=rank, world_size=world_size)
    features, labels = synthetic(args.rows)
    x = torch.from_numpy(features[rank::world_size]).to(device)
    y = torch.from_numpy(labels[rank::world_size]).to(device)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).to(device)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if args.cuda else None)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    steps = (args.rows // world_size) // args.batch_size  # equal on every rank: shards differ by one row at most
    started = time.perf_counter()
    for _ in range(args.epochs):
        for step in range(steps):
            batch = slice(step * args.batch_size, (step + 1) * args.batch_size)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(ddp(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
    loss_value = float(loss)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        accuracy = float((model(x).argmax(dim=1) == y).float().mean())
    if rank == 0:
        samples = args.epochs * steps * args.batch_size
        print("RESULT " + json.dumps({"rank": rank, "world_size": world_size, "samples_per_s": round(samples / seconds, 1),
                                      "loss": round(loss_value, 4), "accuracy": round(accuracy, 4)}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
