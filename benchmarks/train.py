"""Benchmark: dist_sync (2 workers + 1 server) under `h3spark launch` vs a plain ps-lite launch
(DMLC_* set by hand, as tools/launch.py does) vs 1 local worker; MLP 784-256-10, batch 256.

    python benchmarks/train.py [--quick] [--torch-only]

Prints a table; the last line is one JSON object. GPU figures (torch) are null: the torch
engine is not implemented yet, and --torch-only says so.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "examples" / "mxnet_dist_mlp.py")
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MXNET_CPU_WORKER_NTHREADS": "1"}


def results_from(output: str) -> list[dict]:
    return [json.loads(line.split("RESULT ", 1)[1]) for line in output.splitlines() if "RESULT " in line]


def run_h3spark(args: list[str]) -> tuple[list[dict], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "launch", "-n", "2", "-s", "1", "--",
                           sys.executable, SCRIPT, *args], capture_output=True, text=True, env={**os.environ, **THREADS})
    if done.returncode:
        raise SystemExit(f"h3spark launch failed:\n{done.stderr[-2000:]}")
    return results_from(done.stdout), time.perf_counter() - started


def run_plain(args: list[str]) -> tuple[list[dict], float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = {**os.environ, **THREADS, "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": str(port),
            "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "2"}
    started = time.perf_counter()
    helpers = [subprocess.Popen([sys.executable, "-c", "import mxnet"], env={**base, "DMLC_ROLE": role})
               for role in ("scheduler", "server")]
    workers = [subprocess.Popen([sys.executable, SCRIPT, *args], env={**base, "DMLC_ROLE": "worker"},
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate()[0] for worker in workers]
    for helper in helpers:
        helper.wait(timeout=60)
    return [r for out in outputs for r in results_from(out)], time.perf_counter() - started


def run_local(args: list[str]) -> tuple[list[dict], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, SCRIPT, *args, "--kvstore", "local"], capture_output=True, text=True,
                          env={**os.environ, **THREADS})
    return results_from(done.stdout), time.perf_counter() - started


def per_worker(results: list[dict]) -> float:
    return sum(r["samples_per_s"] for r in results) / len(results)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--torch-only", action="store_true")
    options = parser.parse_args()
    if options.torch_only:
        print("torch figures: the torch engine is not implemented yet; nothing to measure")
        print(json.dumps({"ratio_vs_plain_launch": None, "dist_sync_samples_per_s": None, "local_samples_per_s": None,
                          "ratio_vs_plain_torch": None, "ratio_fed_vs_resident": None}))
        return 0
    rows = 20480 if options.quick else 81920
    args = ["--rows", str(rows), "--epochs", "2", "--target-accuracy", "0.9"]
    plain, plain_wall = run_plain(args)
    h3, h3_wall = run_h3spark(args)
    local, local_wall = run_local(args)
    table = [("h3spark launch dist_sync 2w+1s", h3, h3_wall), ("plain ps-lite dist_sync 2w+1s", plain, plain_wall),
             ("local kvstore 1 worker", local, local_wall)]
    print(f"{'run':34} {'samples/s/worker':>17} {'time to 0.9 acc (s)':>20} {'wall (s)':>9}")
    for name, results, wall in table:
        reach = max((r["time_to_accuracy_s"] or float("nan")) for r in results)
        print(f"{name:34} {per_worker(results):17,.0f} {reach:20.2f} {wall:9.1f}")
    print(json.dumps({"ratio_vs_plain_launch": round(per_worker(h3) / per_worker(plain), 3),
                      "dist_sync_samples_per_s": round(per_worker(h3), 1),
                      "plain_dist_sync_samples_per_s": round(per_worker(plain), 1),
                      "local_samples_per_s": round(per_worker(local), 1),
                      "time_to_accuracy_s": {"h3spark": h3[0]["time_to_accuracy_s"], "plain": plain[0]["time_to_accuracy_s"],
                                             "local": local[0]["time_to_accuracy_s"]},
                      "ratio_vs_plain_torch": None, "ratio_fed_vs_resident": None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
