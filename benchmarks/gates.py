"""Benchmark: a compute-heavy CNN on digits, trained (a) in one process, synchronously, and as 2 gates
trained asynchronously and pipelined with (b) no compensation, (c) weight stashing, (d) DC-ASGD, each
gates variant on the in-process bus (each gate on a thread of this process) and over Kafka (each gate
and sentinel a process).

    python benchmarks/gates.py [--quick] [--bootstrap 127.0.0.1:9092] [--no-kafka]

Same spec, data, initial weights, batch order and number of epochs everywhere; one training sentinel
(the whole training split), a validation sentinel after every epoch's worth of batches, the test
split scored at the end. Every engine computes with 1 thread (a gate per core; the monolithic model
on 1 core; the monolithic model with torch's 2 threads is reported too). Samples/s count training
only (the gates' from the sentinel's start to its end, the validation passes running beside it).
The last line is JSON: ratio_throughput_vs_monolithic (stash, in-process), ..._kafka (stash, Kafka),
accuracy per variant, time to the target validation accuracy, delay_p50/p99 (stash, in-process, both
gates), dcasgd_gap_closed ((d - b) / (a - b) in test accuracy; null when (b) is not below (a)).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np

TARGET = 0.90
SPEC = {"input_shape": [1, 8, 8], "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 32, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "conv2d", "name": "conv2", "filters": 64, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "name": "pool1", "size": 2},
    {"type": "conv2d", "name": "conv3", "filters": 128, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "name": "pool2", "size": 2},
    {"type": "flatten", "name": "flat"},
    {"type": "dense", "name": "hidden", "units": 256, "activation": "relu"},
    {"type": "dense", "name": "logits", "units": 10}]}
CUT = {"g1": ["conv1", "conv2", "pool1"], "g2": ["conv3", "pool2", "flat", "hidden", "logits"]}
TRAINING = {"optimizer": "sgd", "lr": 0.05, "batch_size": 32, "dcasgd_lambda": 1.0}


def gates_config(epochs: int, compensation: str, max_in_flight: int, kafka: str | None):
    from h3spark.config import H3SparkConfig
    from h3spark.train import validation_context

    batches = -(-int(1797 * 0.6 + 0.5) // TRAINING["batch_size"])
    section = {"engine": "torch", "model": SPEC, "cut": CUT, "training": TRAINING, "compensation": compensation,
               "max_in_flight": max_in_flight, "threads": 1,
               "data": {"bundled": "digits", "scale": 0.0625, "validation_fraction": 0.2, "test_fraction": 0.2},
               "sentinels": {"train": {"kind": "train", "epochs": epochs},
                             "val": {"kind": "validation", "every_batches": batches}, "test": {"kind": "test"}}}
    if kafka:  # the 2 gates as processes; the sentinels on threads of this process
        section.update(transport="kafka", bootstrap_servers=kafka, placement="processes", sentinel_placement="threads")
    return H3SparkConfig.model_validate({"name": f"bench-gates-{compensation}", "gates": section},
                                        context=validation_context())


def run_monolithic(epochs: int, threads: int) -> dict:
    """The whole model, one process, synchronous SGD over the same batches in the same order."""
    import torch

    from h3spark.gates import GatePlan, load_splits
    from h3spark.train.engines.torch_model import TorchModel

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        config = gates_config(epochs, "stash", 1, None)
        plan = GatePlan.from_config(config.gates, config.name)
        splits = load_splits(plan)
        train, batch = splits["train"], TRAINING["batch_size"]
        model = TorchModel(plan.spec, seed=0, options=plan.options)
        rng, trained_s, samples, to_target = np.random.default_rng([0, 0]), 0.0, 0, None
        for _ in range(epochs):
            order = rng.permutation(len(train))
            started = time.perf_counter()
            for start in range(0, len(order), batch):
                rows = order[start:start + batch]
                model.train_step(train.features[rows], train.labels[rows])
                samples += len(rows)
            trained_s += time.perf_counter() - started
            accuracy = model.evaluate(splits["validation"].features, splits["validation"].labels)["accuracy"]
            if to_target is None and accuracy >= TARGET:
                to_target = trained_s
        test = model.evaluate(splits["test"].features, splits["test"].labels)["accuracy"]
    finally:
        torch.set_num_threads(before)
    return {"samples_per_s": samples / trained_s, "accuracy": test, "time_to_target_s": to_target}


def run_gates(epochs: int, compensation: str, max_in_flight: int, kafka: str | None, workdir: str) -> dict:
    from h3spark.gates import GateNetwork
    from h3spark.train.engines.stage import limit_threads

    limit_threads("torch", 1)
    config = gates_config(epochs, compensation, max_in_flight, kafka)
    result = GateNetwork.from_config(config, workdir).run(timeout_s=1800)
    if result.failed:
        return {"error": "; ".join(f"{name}: {error.splitlines()[0]}" for name, error in result.errors.items())}
    reached = [score["at_s"] for score in result.scores.get("val", []) if score["accuracy"] >= TARGET]
    return {"samples_per_s": result.samples_per_s, "accuracy": result.final_score("test")["accuracy"],
            "time_to_target_s": min(reached) if reached else None,
            "delay_p50": result.delay_percentile(50), "delay_p99": result.delay_percentile(99),
            "delays": {gate: result.delays(gate) for gate in result.gates}, "wall_s": result.seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs, Kafka for stashing only (about a minute or two)")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="the Kafka broker")
    parser.add_argument("--no-kafka", action="store_true", help="skip the Kafka variants")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-in-flight", type=int, default=4)
    args = parser.parse_args(argv)
    epochs = args.epochs or (3 if args.quick else 8)
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as workdir:
        runs["monolithic"] = run_monolithic(epochs, threads=1)
        runs["monolithic_2_threads"] = run_monolithic(epochs, threads=2)
        for compensation in ("none", "stash", "dcasgd"):
            runs[compensation] = run_gates(epochs, compensation, args.max_in_flight, None, workdir)
            print(compensation, json.dumps(runs[compensation]), file=sys.stderr, flush=True)
        if not args.no_kafka:
            for compensation in (("stash",) if args.quick else ("none", "stash", "dcasgd")):
                runs[f"{compensation}_kafka"] = run_gates(epochs, compensation, args.max_in_flight, args.bootstrap, workdir)
                print(f"{compensation}_kafka", json.dumps(runs[f"{compensation}_kafka"]), file=sys.stderr, flush=True)
    print(table(runs, epochs))
    print(json.dumps(summary(runs, epochs, args.max_in_flight)))
    return 0


def table(runs: dict, epochs: int) -> str:
    lines = [f"{epochs} epochs | samples/s | test accuracy | s to val acc {TARGET} | delay p50 | delay p99",
             "---|---:|---:|---:|---:|---:"]
    for name, run in runs.items():
        if "error" in run:
            lines.append(f"{name} | failed: {run['error']} | | | |")
            continue
        lines.append(f"{name} | {run['samples_per_s']:,.0f} | {run['accuracy']:.4f} | {_fmt(run['time_to_target_s'])} | "
                     f"{_fmt(run.get('delay_p50'))} | {_fmt(run.get('delay_p99'))}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary(runs: dict, epochs: int, max_in_flight: int) -> dict:
    def get(name, key):
        return runs.get(name, {}).get(key)

    def ratio(name):
        if not get(name, "samples_per_s"):
            return None
        return round(get(name, "samples_per_s") / runs["monolithic"]["samples_per_s"], 3)

    a, b, d = get("monolithic", "accuracy"), get("none", "accuracy"), get("dcasgd", "accuracy")
    gap = round((d - b) / (a - b), 3) if None not in (a, b, d) and a > b else None
    return {"epochs": epochs, "batch_size": TRAINING["batch_size"], "max_in_flight": max_in_flight, "target": TARGET,
            "ratio_throughput_vs_monolithic": ratio("stash"),
            "ratio_throughput_vs_monolithic_kafka": ratio("stash_kafka"),
            "ratio_throughput_vs_monolithic_2_threads": (round(get("stash", "samples_per_s") / get("monolithic_2_threads", "samples_per_s"), 3)
                                                         if get("stash", "samples_per_s") else None),
            "samples_per_s": {name: round(run["samples_per_s"]) for name, run in runs.items() if run.get("samples_per_s")},
            "accuracy": {name: round(run["accuracy"], 4) for name, run in runs.items() if "accuracy" in run},
            "time_to_target_s": {name: run.get("time_to_target_s") and round(run["time_to_target_s"], 2)
                                 for name, run in runs.items() if "error" not in run},
            "delay_p50": get("stash", "delay_p50"), "delay_p99": get("stash", "delay_p99"),
            "delays": {name: run["delays"] for name, run in runs.items() if "delays" in run},
            "dcasgd_gap_closed": gap,
            "errors": {name: run["error"] for name, run in runs.items() if "error" in run}}


if __name__ == "__main__":
    sys.exit(main())
