"""Benchmark: the model contract's engines against the plain framework loops they wrap, for the
CNN spec of conf/train_cnn_mxnet.yaml on the digits (1x8x8), batch 32, one math thread.

    python benchmarks/engines.py [--quick]

- MXNet: ``MXNetModel.train_step`` on numpy batches (as ``h3spark train``'s workers call it) vs a
  plain Gluon loop of the same network (hybridized alike, the same weights, SGD with momentum,
  the loss read every step as train_step returns it);
- torch: ``TorchModel.train_tensors`` on tensors (as the DDP engine feeds it from TorchBatches)
  vs a plain PyTorch loop of the same network and weights; on CPU, and on CUDA when there is one
  (then with the data already on the GPU, batch 256).

Throughput is the steady state: each arm warms up, then the arms take turns (rounds, many and
short, the order reversed every round so that neither arm always runs first) timing the same
number of steps; an arm's figure is its median round, a ratio the median over rounds of the
two arms' ratio in the same round (side by side in time). Each engine's pair races in a fresh
process, several times (the engines taking turns), and the rounds of all of them are pooled: the
same pair measured in two processes differs more than two rounds of one process do (0.81 and
0.93 for torch in two processes on the idle machine). Every arm runs on one thread, so besides
samples per second of wall time each gets samples per second of the process's CPU time, which
the other work on a shared machine does not change: the CPU ratios are ``ratio_mxnet_vs_plain``
and ``ratio_torch_vs_plain`` (the wall ones are ``*_wall``; ``ratio_quartiles`` the spread of the
same-round CPU ratios); the GPU ratio is by wall time. ``same_init_max_abs_diff``: the largest difference between the initial
logits of MXNetModel and TorchModel built from the spec and seed 0.

Prints a table; the last line is one JSON object with ``ratio_mxnet_vs_plain``,
``ratio_torch_vs_plain`` (null only where torch is not installed), ``ratio_torch_vs_plain_gpu``
(null without CUDA) and ``same_init_max_abs_diff`` (null unless both engines are installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS"):
    os.environ.setdefault(_name, "1")  # as h3spark train's workers run; before mxnet or torch is imported
os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from h3spark.train.engines.model import TrainOptions, build_model  # noqa: E402
from h3spark.train.engines.spec import ModelSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEC_CONF = ROOT / "conf" / "train_cnn_mxnet.yaml"
OPTIONS = TrainOptions(optimizer="sgd", lr=0.05, momentum=0.9)  # what both arms of a pair apply
BATCH, GPU_BATCH = 32, 256
WALL, CPU = 0, 1  # the clocks of a rate


def cnn_spec() -> ModelSpec:
    return ModelSpec.from_dict(yaml.safe_load(SPEC_CONF.read_text())["training"]["model"], where=str(SPEC_CONF))


def digit_batches(batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    features = (digits.images[order] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    labels = digits.target[order].astype(np.int64)
    return [(features[i:i + batch], labels[i:i + batch]) for i in range(0, len(labels) - batch + 1, batch)]


def rate_of(step: Callable[[int], None], steps: int, batch: int, sync: Callable[[], None]) -> tuple[float, float]:
    """Samples per second of wall time and per second of this process's CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(steps):
        step(index)
    sync()
    return steps * batch / (time.perf_counter() - wall), steps * batch / max(time.process_time() - cpu, 1e-9)


def race(arms: dict[str, tuple[Callable[[int], None], Callable[[], None]]], steps: int, warmup: int, rounds: int,
         batch: int) -> dict[str, list[tuple[float, float]]]:
    """Each arm's (wall, CPU) samples/s in each of ``rounds`` turns of ``steps`` steps (the arms
    take turns, so round i of two arms ran side by side in time), after ``warmup`` steps each."""
    for step, sync in arms.values():
        rate_of(step, warmup, batch, sync)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in arms}
    for turn in range(rounds):
        order = list(arms.items())
        for name, (step, sync) in order if turn % 2 == 0 else reversed(order):  # neither arm always goes first
            rates[name].append(rate_of(step, steps, batch, sync))
    return rates


# The plain networks, written as a user would for conf/train_cnn_mxnet.yaml's spec, start from the
# spec's initial weights (so every arm starts from the same model): the index of each spec layer's
# block in each plain network.
TORCH_BLOCKS = {"conv1": 0, "batchnorm0": 3, "hidden": 5, "logits": 8}
GLUON_BLOCKS = {"conv1": 0, "batchnorm0": 2, "hidden": 4, "logits": 6}
GLUON_BATCHNORM = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean", "running_var": "running_var"}


def initial_weights(spec: ModelSpec) -> dict[str, np.ndarray]:
    weights = spec.initial_weights(0)
    if {spec.layer_of(name) for name in weights} != set(TORCH_BLOCKS):
        raise SystemExit(f"{SPEC_CONF}'s spec changed (weights {sorted(weights)}); update the plain networks here to match.")
    return weights


# --- MXNet --------------------------------------------------------------------------------------

def plain_gluon_cnn(mx, weights: dict[str, np.ndarray]):
    nn = mx.gluon.nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(16, 3, padding=1, activation="relu", in_channels=1), nn.MaxPool2D(2), nn.BatchNorm(in_channels=16),
            nn.Flatten(), nn.Dense(64, activation="relu", in_units=256), nn.Dropout(0.2), nn.Dense(10, in_units=64))
    net.initialize(mx.init.Zero())
    for name, value in weights.items():
        layer, param = name.split(".")
        block = net[GLUON_BLOCKS[layer]]
        getattr(block, GLUON_BATCHNORM[param] if layer == "batchnorm0" else param).set_data(mx.nd.array(value))
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def mxnet_arms(spec: ModelSpec, batches) -> dict:
    import mxnet as mx

    model = build_model("mxnet", spec, seed=0, options=OPTIONS)
    net = plain_gluon_cnn(mx, initial_weights(spec))
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": OPTIONS.lr, "momentum": OPTIONS.momentum})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def plain(index: int) -> None:
        features, labels = batches[index % len(batches)]
        data, label = mx.nd.array(features), mx.nd.array(labels)
        with mx.autograd.record():
            loss = loss_fn(net(data), label).mean()
        loss.backward()
        trainer.step(1)
        float(loss.asscalar())  # the loss each step, as train_step returns it

    def engine(index: int) -> None:
        model.train_step(*batches[index % len(batches)])

    return {"MXNet engine (MXNetModel.train_step)": (engine, mx.nd.waitall), "plain Gluon loop": (plain, mx.nd.waitall)}


# --- torch --------------------------------------------------------------------------------------

def plain_torch_cnn(torch, weights: dict[str, np.ndarray], device: str):
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(16, momentum=0.1),
                        nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))
    state = {f"{TORCH_BLOCKS[name.split('.')[0]]}.{name.split('.')[1]}": torch.from_numpy(value) for name, value in weights.items()}
    net.load_state_dict(state, strict=False)  # num_batches_tracked is no spec weight
    return net.to(device)


def torch_arms(spec: ModelSpec, batches, device: str) -> dict:
    import torch

    from h3spark.train.engines.torch_model import TorchModel

    model = TorchModel(spec, seed=0, options=OPTIONS, device=device)
    net = plain_torch_cnn(torch, initial_weights(spec), device)
    optimizer = torch.optim.SGD(net.parameters(), lr=OPTIONS.lr, momentum=OPTIONS.momentum)
    tensors = [(torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)) for x, y in batches]

    def plain(index: int) -> None:
        features, labels = tensors[index % len(tensors)]
        net.train()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(features), labels).backward()
        optimizer.step()

    def engine(index: int) -> None:
        model.train_tensors(*tensors[index % len(tensors)])

    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    return {f"torch engine (TorchModel.train_tensors, {device})": (engine, sync), f"plain torch loop ({device})": (plain, sync)}


def same_init_max_abs_diff(spec: ModelSpec, features: np.ndarray) -> float:
    mxnet_logits = build_model("mxnet", spec, seed=0).logits(features)
    torch_logits = build_model("torch", spec, seed=0).logits(features)
    return float(np.abs(mxnet_logits - torch_logits).max())


# --- the run ------------------------------------------------------------------------------------

def ratio(rates: dict, engine: str, plain: str, clock: int) -> float | None:
    """The median over rounds of engine / plain samples/s in the same round, by ``clock`` (0: wall,
    1: CPU time): paired rounds cancel the load that drifts between them. None when an arm did not run."""
    if engine not in rates or plain not in rates:
        return None
    return round(statistics.median(e[clock] / p[clock] for e, p in zip(rates[engine], rates[plain])), 3)


def ratio_quartiles(rates: dict, engine: str, plain: str, clock: int) -> list[float] | None:
    """The first and third quartiles of the same-round ratios: how far one round's ratio strays."""
    if engine not in rates or plain not in rates:
        return None
    quartiles = statistics.quantiles([e[clock] / p[clock] for e, p in zip(rates[engine], rates[plain])], n=4)
    return [round(quartiles[0], 3), round(quartiles[2], 3)]


def median_rate(rounds: list[tuple[float, float]], clock: int) -> float:
    return statistics.median(rate[clock] for rate in rounds)


PAIRS = {"mxnet": ("MXNet engine (MXNetModel.train_step)", "plain Gluon loop"),
         "torch": ("torch engine (TorchModel.train_tensors, cpu)", "plain torch loop (cpu)"),
         "torch_gpu": ("torch engine (TorchModel.train_tensors, cuda)", "plain torch loop (cuda)")}


def race_engine(engine: str, steps: int, warmup: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """One engine's arms raced in this process: "mxnet", or "torch" (CPU, and CUDA when there is one)."""
    spec, batches = cnn_spec(), digit_batches(BATCH)
    if engine == "mxnet":
        return race(mxnet_arms(spec, batches), steps, warmup, rounds, BATCH)
    import torch

    torch.set_num_threads(1)
    rates = race(torch_arms(spec, batches, "cpu"), steps, warmup, rounds, BATCH)
    if torch.cuda.is_available():
        rates.update(race(torch_arms(spec, digit_batches(GPU_BATCH), "cuda"), steps, warmup, rounds, GPU_BATCH))
    return rates


def measure(steps: int, warmup: int, rounds: int, processes: int) -> tuple[dict[str, list[tuple[float, float]]], float | None]:
    """Every arm's (wall, CPU) samples/s by round that this environment can run, pooled over
    ``processes`` fresh processes per engine (the engines taking turns), and same_init_max_abs_diff.
    A fresh process per race: the same pair measured in two processes differs more (memory
    placement, the other engine's runtime loaded beside it) than two rounds in one process."""
    engines = [name for name in ("mxnet", "torch") if importlib.util.find_spec(name) is not None]
    rates: dict[str, list[tuple[float, float]]] = {}
    for _ in range(processes):
        for engine in engines:
            done = subprocess.run([sys.executable, __file__, "--race", engine, "--steps", str(steps), "--warmup", str(warmup),
                                   "--rounds", str(rounds)], check=True, stdout=subprocess.PIPE, text=True)
            for name, value in json.loads(done.stdout.strip().splitlines()[-1]).items():
                rates.setdefault(name, []).extend(tuple(rate) for rate in value)
    if engines != ["mxnet", "torch"]:
        return rates, None
    spec, batches = cnn_spec(), digit_batches(BATCH)
    return rates, same_init_max_abs_diff(spec, batches[0][0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a minute: fewer and shorter rounds")
    parser.add_argument("--race", choices=("mxnet", "torch"), help=argparse.SUPPRESS)  # one process's race (internal)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.race:
        print(json.dumps(race_engine(args.race, args.steps, args.warmup, args.rounds)))
        return 0
    steps, warmup, rounds, processes = (150, 100, 4, 2) if args.quick else (400, 300, 8, 3)
    rates, diff = measure(steps, warmup, rounds, processes)
    load = os.getloadavg()[0]
    print(f"engines: the CNN of {SPEC_CONF.relative_to(ROOT)} on the digits, batch {BATCH} (GPU {GPU_BATCH}), "
          f"1 thread, {processes} processes x {rounds} rounds of {steps} steps (medians); {platform.node()}, {os.cpu_count()} cores, load {load:.1f}")
    print(f"{'arm':46} {'samples/s':>12} {'per CPU s':>12}")
    for name, rounds_of_arm in rates.items():
        print(f"{name:46} {median_rate(rounds_of_arm, WALL):12,.0f} {median_rate(rounds_of_arm, CPU):12,.0f}")
    print(json.dumps({"ratio_mxnet_vs_plain": ratio(rates, *PAIRS["mxnet"], CPU),
                      "ratio_torch_vs_plain": ratio(rates, *PAIRS["torch"], CPU),
                      "ratio_torch_vs_plain_gpu": ratio(rates, *PAIRS["torch_gpu"], WALL),
                      "same_init_max_abs_diff": diff,
                      "ratio_mxnet_vs_plain_wall": ratio(rates, *PAIRS["mxnet"], WALL),
                      "ratio_torch_vs_plain_wall": ratio(rates, *PAIRS["torch"], WALL),
                      "ratio_quartiles": {pair: ratio_quartiles(rates, *PAIRS[pair], CPU) for pair in ("mxnet", "torch")},
                      "samples_per_s": {name: round(median_rate(value, WALL), 1) for name, value in rates.items()},
                      "samples_per_cpu_s": {name: round(median_rate(value, CPU), 1) for name, value in rates.items()},
                      "batch_size": BATCH, "steps": steps, "rounds": rounds, "processes": processes, "load_average": round(load, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
