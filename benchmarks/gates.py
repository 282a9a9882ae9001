"""Benchmark: a compute-heavy CNN on digits, trained (a) in one process, synchronously, and as 2 gates
trained asynchronously and pipelined with (b) no compensation, (c) weight stashing, (d) DC-ASGD, each
gates variant on the in-process bus (each gate on a thread of this process) and over Kafka (each gate
a process; the sentinels on threads of this one).

    python benchmarks/gates.py [--quick] [--bootstrap 127.0.0.1:9092] [--no-kafka]

Same spec, data, initial weights, batch order and number of epochs everywhere (12; 2 with --quick):
plain SGD (lr 0.05 decaying to 0 on a cosine over the run's updates, batch 32; DC-ASGD's lambda 0.04), one training sentinel on the whole training split with 4 batches in
flight, a validation pass per epoch's worth of batches, the test split scored at the end.

Throughput: 3 epochs each of the monolithic model on 1 thread, on torch's 2 threads, and of the gates
(stashing, 1 thread per gate, in-process, training sentinel only: the monolithic timer leaves its
validation out too), interleaved 5 times (2 with --quick) because the machine is shared and its load drifts; medians, and the median of the per-round ratios; ``cores_used``: this
process's CPU seconds per wall second in those runs (what the machine gave it). Gates count training only,
from the sentinel's start to its end (the validation passes run beside it). Accuracy, time to the
target validation accuracy, and delays come from runs of each variant over all the epochs, with 3 seeds
in-process (1 with --quick; each seed draws the initial weights and the batch order, the same for
every variant) and 1 over Kafka: mean accuracy (a seed that diverged is left out and counted).

The last line is JSON: ratio_throughput_vs_monolithic (median ratio, stash in-process vs monolithic on
1 thread), ratio_throughput_vs_monolithic_kafka (stash over Kafka vs the monolithic median),
accuracy per variant (test), time_to_target_s, delay_p50/p99 (stash, in-process, both gates), and
dcasgd_gap_closed ((d - b) / (a - b) in test accuracy; null when (b) is not below (a)).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np

TARGET = 0.85
THROUGHPUT_EPOCHS = 3
# The cut is balanced: conv2 (48 -> 96 at 8x8) and conv3 (96 -> 192 at 4x4) are 2.65M multiply-adds
# each, so each gate holds half of the work (with 32/64/128 filters the step was short enough that the
# gates' per-message Python work took a larger share: 1.16x in the full run of 2026-11-29 05:39).
SPEC = {"input_shape": [1, 8, 8], "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 48, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "conv2d", "name": "conv2", "filters": 96, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "name": "pool1", "size": 2},
    {"type": "conv2d", "name": "conv3", "filters": 192, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "name": "pool2", "size": 2},
    {"type": "flatten", "name": "flat"},
    {"type": "dense", "name": "hidden", "units": 256, "activation": "relu"},
    {"type": "dense", "name": "logits", "units": 10}]}
CUT = {"g1": ["conv1", "conv2", "pool1"], "g2": ["conv3", "pool2", "flat", "hidden", "logits"]}
# Plain SGD whose rate decays (cosine) over the run's updates: with a constant rate the variants ended
# 15-17 points apart from seed to seed (the last updates' noise), which hid any difference of method.
TRAINING = {"optimizer": "sgd", "lr": 0.05, "batch_size": 32, "dcasgd_lambda": 0.04,  # lambda: the paper's
            "schedule": "cosine"}


def gates_config(epochs: int, compensation: str, max_in_flight: int, kafka: str | None, seed: int = 0, validate: bool = True):
    from h3spark.config import H3SparkConfig
    from h3spark.train import validation_context

    batches = -(-int(1797 * 0.6 + 0.5) // TRAINING["batch_size"])
    training = {**TRAINING, "total_steps": epochs * batches}
    section = {"engine": "torch", "model": SPEC, "cut": CUT, "training": training, "compensation": compensation, "seed": seed,
               "max_in_flight": max_in_flight, "threads": 1,
               "data": {"bundled": "digits", "scale": 0.0625, "validation_fraction": 0.2, "test_fraction": 0.2},
               "sentinels": {"train": {"kind": "train", "epochs": epochs},
                             "val": {"kind": "validation", "every_batches": batches}, "test": {"kind": "test"}}}
    if not validate:  # throughput rounds: training alone, as the monolithic model's timer counts it
        del section["sentinels"]["val"]
    if kafka:  # the 2 gates as processes; the sentinels on threads of this process
        section.update(transport="kafka", bootstrap_servers=kafka, placement="processes", sentinel_placement="threads")
    return H3SparkConfig.model_validate({"name": f"bench-gates-{compensation}", "gates": section},
                                        context=validation_context())


def run_monolithic(epochs: int, threads: int, seed: int = 0) -> dict:
    """The whole model, one process, synchronous SGD over the same batches in the same order."""
    import torch

    from h3spark.gates import GatePlan, load_splits
    from h3spark.train.engines.torch_model import TorchModel

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        config = gates_config(epochs, "stash", 1, None, seed)
        plan = GatePlan.from_config(config.gates, config.name)
        splits = load_splits(plan)
        train, batch = splits["train"], TRAINING["batch_size"]
        model = TorchModel(plan.spec, seed=seed, options=plan.options)
        rng, trained_s, samples, to_target = np.random.default_rng([seed, 0]), 0.0, 0, None
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


def run_gates(epochs: int, compensation: str, max_in_flight: int, kafka: str | None, workdir: str, seed: int = 0,
              validate: bool = True) -> dict:
    from h3spark.gates import GateNetwork
    from h3spark.train.engines.stage import limit_threads

    limit_threads("torch", 1)
    config = gates_config(epochs, compensation, max_in_flight, kafka, seed, validate)
    result = GateNetwork.from_config(config, workdir).run(timeout_s=1800)
    if result.failed:
        return {"error": "; ".join(f"{name}: {error.splitlines()[0]}" for name, error in result.errors.items())}
    reached = [score["at_s"] for score in result.scores.get("val", []) if score["accuracy"] >= TARGET]
    return {"samples_per_s": result.samples_per_s, "accuracy": result.final_score("test")["accuracy"],
            "time_to_target_s": min(reached) if reached else None,
            "delay_p50": result.delay_percentile(50), "delay_p99": result.delay_percentile(99),
            "delays": {gate: result.delays(gate) for gate in result.gates}, "wall_s": result.seconds}


def combine(seeded: list[dict]) -> dict:
    """One variant over the seeds: mean accuracy (and each seed's), median samples/s and time to target
    (null when a seed never reached it), delays of the first seed; the errors of the seeds that failed."""
    done = [run for run in seeded if "error" not in run]
    if not done:
        return {"error": seeded[0]["error"], "failed_seeds": len(seeded)}
    times = [run["time_to_target_s"] for run in done]
    combined = {"accuracy": float(np.mean([run["accuracy"] for run in done])),
                "accuracy_std": float(np.std([run["accuracy"] for run in done])),
                "accuracy_seeds": [round(run["accuracy"], 4) for run in done],
                "samples_per_s": float(np.median([run["samples_per_s"] for run in done])),
                "time_to_target_s": None if None in times else float(np.median(times)),
                "failed_seeds": len(seeded) - len(done)}
    for key in ("delay_p50", "delay_p99", "delays"):
        if key in done[0]:
            combined[key] = done[0][key]
    if len(done) < len(seeded):
        combined["error"] = next(run["error"] for run in seeded if "error" in run)
    return combined


def measure_throughput(repeats: int, epochs: int, max_in_flight: int, workdir: str) -> dict:
    """Samples/s of ``epochs`` epochs of training, monolithic (1 and 2 threads) and gates with stashing
    in-process (no validation sentinel: the monolithic timer counts training only), the three interleaved
    ``repeats`` times (the machine is shared: its load drifts); medians, and the median of the runs'
    ratios gates / monolithic. Several epochs a round: one (34 batches) is short enough that filling
    and draining the pipeline weighs on it."""
    runs: dict[str, list[float]] = {"monolithic": [], "monolithic_2_threads": [], "stash": []}
    cores: dict[str, list[float]] = {name: [] for name in runs}  # this process's CPU seconds per wall second
    measures = {"monolithic": lambda: run_monolithic(epochs, threads=1),
                "monolithic_2_threads": lambda: run_monolithic(epochs, threads=2),
                "stash": lambda: run_gates(epochs, "stash", max_in_flight, None, workdir, validate=False)}
    for _ in range(repeats):
        for name, measure in measures.items():
            cpu, wall = time.process_time(), time.perf_counter()
            runs[name].append(measure()["samples_per_s"])
            cores[name].append((time.process_time() - cpu) / (time.perf_counter() - wall))
        print("throughput", {name: round(values[-1]) for name, values in runs.items()},
              {name: round(values[-1], 2) for name, values in cores.items()}, file=sys.stderr, flush=True)
    ratios = [gates / mono for gates, mono in zip(runs["stash"], runs["monolithic"])]
    ratios_2 = [gates / mono for gates, mono in zip(runs["stash"], runs["monolithic_2_threads"])]
    return {"median": {name: float(np.median(values)) for name, values in runs.items()}, "runs": runs,
            "cores": {name: round(float(np.median(values)), 2) for name, values in cores.items()},
            "ratio": float(np.median(ratios)), "ratio_2_threads": float(np.median(ratios_2))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, 2 throughput rounds, Kafka for stashing only")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="the Kafka broker")
    parser.add_argument("--no-kafka", action="store_true", help="skip the Kafka variants")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-in-flight", type=int, default=4)
    args = parser.parse_args(argv)
    epochs, repeats, seeds = args.epochs or (2 if args.quick else 12), 2 if args.quick else 5, 1 if args.quick else 3
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as workdir:
        throughput = measure_throughput(repeats, THROUGHPUT_EPOCHS, args.max_in_flight, workdir)
        for seed in range(seeds):  # each seed: its own initial weights and batch order, the same for every variant
            seeded = {"monolithic": run_monolithic(epochs, threads=1, seed=seed)}
            for compensation in ("none", "stash", "dcasgd"):
                seeded[compensation] = run_gates(epochs, compensation, args.max_in_flight, None, workdir, seed)
            print(f"seed {seed}", json.dumps(seeded), file=sys.stderr, flush=True)
            for name, run in seeded.items():
                runs.setdefault(name, {"seeds": []})["seeds"].append(run)
        runs = {name: combine(entry["seeds"]) for name, entry in runs.items()}
        if not args.no_kafka:
            for compensation in (("stash",) if args.quick else ("none", "stash", "dcasgd")):
                runs[f"{compensation}_kafka"] = combine([run_gates(epochs, compensation, args.max_in_flight, args.bootstrap, workdir)])
                print(f"{compensation}_kafka", json.dumps(runs[f"{compensation}_kafka"]), file=sys.stderr, flush=True)
    print(table(runs, epochs))
    print(f"\nthroughput, {THROUGHPUT_EPOCHS} epochs a round, median of the rounds: " + ", ".join(
        f"{name} {value:,.0f} samples/s" for name, value in throughput["median"].items()))
    print(json.dumps(summary(runs, throughput, epochs, args.max_in_flight)))
    return 0


def table(runs: dict, epochs: int) -> str:
    lines = [f"{epochs} epochs | test accuracy (mean ± std; seeds) | samples/s | s to val acc {TARGET} | delay p50 | p99 | failed",
             "---|---|---:|---:|---:|---:|---"]
    for name, run in runs.items():
        if "accuracy" not in run:
            lines.append(f"{name} | | | | | | all: {run['error']}")
            continue
        failed = f"{run['failed_seeds']}: {run['error']}" if run.get("failed_seeds") else ""
        lines.append(f"{name} | {run['accuracy']:.4f} ± {run['accuracy_std']:.4f} ({', '.join(map(str, run['accuracy_seeds']))}) | "
                     f"{run['samples_per_s']:,.0f} | {_fmt(run['time_to_target_s'])} | {_fmt(run.get('delay_p50'))} | "
                     f"{_fmt(run.get('delay_p99'))} | {failed}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary(runs: dict, throughput: dict, epochs: int, max_in_flight: int) -> dict:
    def get(name, key):
        return runs.get(name, {}).get(key)

    monolithic = throughput["median"]["monolithic"]
    kafka = get("stash_kafka", "samples_per_s")
    a, b, d = get("monolithic", "accuracy"), get("none", "accuracy"), get("dcasgd", "accuracy")
    gap = round((d - b) / (a - b), 3) if None not in (a, b, d) and a > b else None
    return {"epochs": epochs, "batch_size": TRAINING["batch_size"], "max_in_flight": max_in_flight, "target": TARGET,
            "dcasgd_lambda": TRAINING["dcasgd_lambda"],
            "ratio_throughput_vs_monolithic": round(throughput["ratio"], 3),
            "ratio_throughput_vs_monolithic_kafka": round(kafka / monolithic, 3) if kafka else None,
            "ratio_throughput_vs_monolithic_2_threads": round(throughput["ratio_2_threads"], 3),
            "throughput_samples_per_s": {name: round(value) for name, value in throughput["median"].items()},
            "throughput_runs": {name: [round(v) for v in values] for name, values in throughput["runs"].items()},
            "cores_used": throughput["cores"],
            "samples_per_s": {name: round(run["samples_per_s"]) for name, run in runs.items() if run.get("samples_per_s")},
            "accuracy": {name: (round(run["accuracy"], 4) if "accuracy" in run else None) for name, run in runs.items()},
            "accuracy_seeds": {name: run.get("accuracy_seeds") for name, run in runs.items()},
            "time_to_target_s": {name: run.get("time_to_target_s") and round(run["time_to_target_s"], 2)
                                 for name, run in runs.items()},
            "delay_p50": get("stash", "delay_p50"), "delay_p99": get("stash", "delay_p99"),
            "delays": {name: run["delays"] for name, run in runs.items() if "delays" in run},
            "dcasgd_gap_closed": gap,
            "errors": {name: run["error"] for name, run in runs.items() if "error" in run}}


if __name__ == "__main__":
    sys.exit(main())
