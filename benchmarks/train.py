"""Benchmark: dist_sync (2 workers + 1 server) under `h3spark launch` vs a plain ps-lite launch
(DMLC_* set by hand, as tools/launch.py does) vs 1 local worker; MLP 784-256-10, batch 256.

    python benchmarks/train.py [--quick] [--torch-only]

Prints a table; the last line is one JSON object. Besides throughput it holds the start-up cost
of a launch: the wall time from starting it to the workers' first finished step (each worker's
RESULT carries ``first_step_at``), minus the plain launch's:
- ``startup_overhead_s``: ``h3spark launch --remote`` in a fresh process (cold: Python, imports,
  the barrier stage) on a resident Spark Connect server (``h3spark services up connect``, started
  here when it is not running), as a cluster's driver is already up for its users. The process
  starts no JVM; the server's Python workers for h3spark's shared session run since this user's
  first launch there, which the benchmark makes first;
- ``startup_overhead_new_session_s``: the same in a server session of its own (another user's first
  launch on that server: Spark starts that session's Python workers);
- ``startup_overhead_embedded_s``: ``h3spark launch`` in a fresh process with its own driver JVM
  (local master: Python, JVM, Spark's Python workers, the barrier stage);
- ``startup_overhead_warm_s``: the later ``h3spark.train.launch`` calls of one Python process,
  as a notebook makes them (the session and Spark's Python workers already run).
The full run repeats each (3 plain and 3 cold launches taking turns, 3 on the Connect server,
3 warm calls) and takes medians; ``--quick`` runs each once. The driver JVM starts from its class-data archive when
scripts/setup.sh has built it (h3spark.spark.build_jvm_archive).
``time_to_worker_start_s`` splits that: until the workers' scripts began (the launcher's own part;
after it both launches do the same work, however busy the host). ``--torch-only`` (the GPU machine: torch,
no MXNet or Java) measures the torch figures instead, on CUDA when there is one, else CPU:
- ``ratio_vs_plain_torch``: the torch engine (``h3spark.train`` engine torch, 1 rank, DDP,
  fed from Parquet through the data iterator) vs a plain PyTorch loop of the same MLP on the
  same rows already on the device;
- ``ratio_fed_vs_resident``: a 2-conv CNN on 28x28 at batch 256 fed from a Parquet dataset
  through ``DataIterator`` + ``TorchBatches`` vs the same loop on data already on the device.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "examples" / "mxnet_dist_mlp.py")
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MXNET_CPU_WORKER_NTHREADS": "1"}
START_TIMEOUT_S = 300  # the tasks' start can take over the default 30 s on a host busy with other work


def results_from(output: str) -> list[dict]:
    return [json.loads(line.split("RESULT ", 1)[1]) for line in output.splitlines() if "RESULT " in line]


def since_launch(results: list[dict], launched_at: float) -> tuple[float, float]:
    """Seconds from ``launched_at`` (wall clock) until every worker had started, and had finished its first step."""
    return max(r["started_at"] for r in results) - launched_at, max(r["first_step_at"] for r in results) - launched_at


def run_h3spark(args: list[str], where: tuple[str, ...] = (), env: dict[str, str] | None = None,
                ) -> tuple[list[dict], float, tuple[float, float]]:
    """``h3spark launch [where]`` in a fresh process: its results, wall time and ``since_launch``."""
    launched_at, started = time.time(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "launch", "-n", "2", "-s", "1", *where,
                           "--start-timeout", str(START_TIMEOUT_S), "--", sys.executable, SCRIPT, *args],
                          capture_output=True, text=True, env={**os.environ, **THREADS, **(env or {})})
    if done.returncode:
        raise SystemExit(f"h3spark launch failed:\n{done.stderr[-2000:]}")
    results = results_from(done.stdout)
    return results, time.perf_counter() - started, since_launch(results, launched_at)


@contextlib.contextmanager
def connect_server():
    """The URL of the local Spark Connect service (``h3spark services up connect``), started here and
    stopped at the end unless it was running already."""
    from h3spark import services

    running = "connect" in services.status()
    endpoint = services.up(["connect"])["connect"]
    try:
        yield endpoint.uri
    finally:
        if not running:
            services.down(["connect"])


def run_connect(args: list[str], url: str, repeats: int) -> tuple[list, tuple[list[dict], float, tuple[float, float]]]:
    """Cold ``h3spark launch --remote`` processes on the resident server: ``repeats`` of them as any user's
    after their first (the shared session's Python workers warm), and one in a session of its own
    (a user's first launch on this server: Spark starts the session's Python workers)."""
    where = ("--remote", url)
    run_h3spark(args, where)  # this user's session on the server exists from here on (a first launch)
    resident = [run_h3spark(args, where) for _ in range(repeats)]
    return resident, run_h3spark(args, where, {"LOGNAME": f"h3spark-bench-{uuid.uuid4().hex[:8]}"})


def run_api_calls(count: int, args: list[str]) -> list[tuple[float, float]]:
    """``count`` ``h3spark.train.launch`` calls in one Python process (all but the first warm): ``since_launch`` of each."""
    done = subprocess.run([sys.executable, __file__, "--api-calls", str(count), "--", *args], capture_output=True, text=True,
                          env={**os.environ, **THREADS})
    if done.returncode:
        raise SystemExit(f"h3spark.train.launch failed:\n{done.stderr[-2000:]}")
    calls = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("CALL ")]
    results = [results_from(part) for part in done.stdout.split("CALL ")[1:]]
    return [since_launch(found, float(launched_at)) for (_, launched_at), found in zip(calls, results)]


def api_calls(count: int, args: list[str]) -> None:
    """What ``--api-calls`` runs: ``launch`` ``count`` times, as a notebook calls it (its default session)."""
    from h3spark.train import launch

    for call in range(1, count + 1):
        print(f"CALL {call} {time.time():.3f}", flush=True)
        launch([sys.executable, SCRIPT, *args], num_workers=2, num_servers=1, start_timeout_s=START_TIMEOUT_S)


def run_plain(args: list[str]) -> tuple[list[dict], float, tuple[float, float]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = {**os.environ, **THREADS, "DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": str(port),
            "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "2"}
    launched_at, started = time.time(), time.perf_counter()
    helpers = [subprocess.Popen([sys.executable, "-c", "import mxnet"], env={**base, "DMLC_ROLE": role})
               for role in ("scheduler", "server")]
    workers = [subprocess.Popen([sys.executable, SCRIPT, *args], env={**base, "DMLC_ROLE": "worker"},
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate()[0] for worker in workers]
    for helper in helpers:
        helper.wait(timeout=60)
    results = [r for out in outputs for r in results_from(out)]
    return results, time.perf_counter() - started, since_launch(results, launched_at)


def run_local(args: list[str]) -> tuple[list[dict], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, SCRIPT, *args, "--kvstore", "local"], capture_output=True, text=True,
                          env={**os.environ, **THREADS})
    return results_from(done.stdout), time.perf_counter() - started


def publish_synthetic(uri: str, rows: int, width: int = 784, classes: int = 10) -> None:
    """Separable synthetic rows as uncompressed fixed_size_binary features (the fastest layout to feed)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from h3spark.storage import describe_splits, publishing, write_manifest

    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1, (classes, width)).astype(np.float32)
    labels = rng.integers(0, classes, rows)
    values = centers[labels] + rng.normal(0, 2, (rows, width)).astype(np.float32)
    with publishing(uri, overwrite=True) as tmp_uri:
        folder = Path(tmp_uri[len("file://"):])
        folder.mkdir(parents=True)
        for part, ids in enumerate(np.array_split(np.arange(rows), 8)):
            features = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * width), len(ids), [None, pa.py_buffer(values[ids].tobytes())])
            pq.write_table(pa.table({"features": features, "label": pa.array(labels[ids].astype(np.int64))}),
                           folder / f"part-{part}.parquet", row_group_size=8192, compression="none")
        write_manifest(tmp_uri, {"rows": rows, "features": "features", "label": "label", "splits": describe_splits(tmp_uri),
                                 "columns": {"features": {"dtype": "float32", "shape": [width], "encoding": "binary"},
                                             "label": {"dtype": "int64", "shape": []}}})


def torch_models(torch):
    nn = torch.nn
    mlp = lambda: nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))  # noqa: E731
    cnn = lambda: nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # noqa: E731
                                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                nn.Linear(64 * 7 * 7, 10))
    return {"mlp": mlp, "cnn": cnn}


def train_loop(torch, model, batches, device, lr: float = 0.05) -> float:
    """Train ``model`` on ``batches`` (an iterable of (x, y) tensors); return samples/s (one sync at the end)."""
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    samples, started = 0, time.perf_counter()
    for features, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(features), labels).backward()
        optimizer.step()
        samples += len(labels)
    float(loss_fn(model(features), labels).detach())  # waits for the device
    return samples / (time.perf_counter() - started)


def resident_batches(torch, uri: str, device, epochs: int, batch: int = 256):
    from h3spark.feed import DataIterator

    data = DataIterator(uri, batch_size=1 << 20, prefetch=0)
    features, labels = (torch.cat(parts) for parts in zip(*((torch.from_numpy(x.copy()), torch.from_numpy(y)) for x, y in data)))
    features, labels = features.to(device), labels.to(device)
    steps = len(labels) // batch
    return [(features[i * batch:(i + 1) * batch], labels[i * batch:(i + 1) * batch]) for _ in range(epochs) for i in range(steps)]


def fed_batches(uri: str, device, epochs: int, batch: int = 256):
    from h3spark.feed import DataIterator, TorchBatches

    data = DataIterator(uri, batch_size=batch, epochs=epochs, shuffle=True, drop_last=True, prefetch=8)
    return TorchBatches(data, device=device, non_blocking=device.type == "cuda")


def torch_engine_rate(uri: str, workdir: Path, epochs: int, gpus: int) -> float:
    from h3spark.config import H3SparkConfig
    from h3spark.train import train_from_config

    config = H3SparkConfig(name="bench-torch", dataset={"uri": uri}, training={
        "engine": "torch", "workers": 1, "gpus": gpus, "launcher": "local", "epochs": epochs, "batch_size": 256,
        "lr": 0.05, "momentum": 0.9, "params": {"hidden": [256], "classes": 10}})
    _, results = train_from_config(config, workdir, echo=False)
    return results[0]["samples_per_s"]


def measure_torch(quick: bool) -> dict:
    import tempfile

    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)  # as the engine's ranks run (OMP_NUM_THREADS=1), so both arms match
    rows, epochs = (20480, 1) if quick else (102400, 3)
    models = torch_models(torch)
    with tempfile.TemporaryDirectory(prefix="h3spark-bench-torch-") as tmp:
        uri = f"file://{tmp}/synthetic"
        publish_synthetic(uri, rows)
        train_loop(torch, models["cnn"](), resident_batches(torch, uri, device, 1)[:20], device)  # warm-up (cuDNN, allocator)
        torch.manual_seed(0)
        plain_mlp = train_loop(torch, models["mlp"](), resident_batches(torch, uri, device, epochs), device)
        engine_mlp = torch_engine_rate(uri, Path(tmp) / "work", epochs, 1 if device.type == "cuda" else 0)
        resident_cnn = train_loop(torch, models["cnn"](), resident_batches(torch, uri, device, epochs), device)
        fed_cnn = train_loop(torch, models["cnn"](), fed_batches(uri, device, epochs), device)
    rows_out = [("plain torch MLP, data on device", plain_mlp), ("torch engine MLP (DDP, fed)", engine_mlp),
                ("CNN, data on device", resident_cnn), ("CNN, fed from Parquet", fed_cnn)]
    print(f"torch {torch.__version__} on {device} ({rows} rows x {epochs} epochs, batch 256)")
    for name, rate in rows_out:
        print(f"{name:34} {rate:17,.0f} samples/s")
    return {"device": str(device), "plain_torch_samples_per_s": round(plain_mlp, 1), "torch_engine_samples_per_s": round(engine_mlp, 1),
            "ratio_vs_plain_torch": round(engine_mlp / plain_mlp, 3), "cnn_resident_samples_per_s": round(resident_cnn, 1),
            "cnn_fed_samples_per_s": round(fed_cnn, 1), "ratio_fed_vs_resident": round(fed_cnn / resident_cnn, 3)}


def per_worker(results: list[dict]) -> float:
    return sum(r["samples_per_s"] for r in results) / len(results)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--torch-only", action="store_true")
    parser.add_argument("--api-calls", type=int, help=argparse.SUPPRESS)  # the warm measurement's own process
    parser.add_argument("script_args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.api_calls:
        api_calls(options.api_calls, options.script_args)
        return 0
    if options.torch_only:
        print(json.dumps({"ratio_vs_plain_launch": None, "dist_sync_samples_per_s": None, "local_samples_per_s": None,
                          "startup_overhead_s": None, "startup_overhead_warm_s": None, **measure_torch(options.quick)}))
        return 0
    rows = 20480 if options.quick else 81920
    args = ["--rows", str(rows), "--epochs", "2", "--target-accuracy", "0.9"]
    # Start-up is a few seconds that a shared machine moves by one or two: the full run repeats
    # each launch (plain and cold h3spark taking turns; warm calls in one process) and takes medians.
    repeats = 1 if options.quick else 3
    plains, h3s = [], []
    for _ in range(repeats):
        plains.append(run_plain(args))
        h3s.append(run_h3spark(args))
    plain, plain_wall, _ = plains[0]
    h3, h3_wall, _ = h3s[0]
    plain_start, plain_first = (statistics.median(run[2][part] for run in plains) for part in (0, 1))
    h3_start, h3_first = (statistics.median(run[2][part] for run in h3s) for part in (0, 1))
    with connect_server() as url:
        resident, new_session = run_connect(args, url, repeats)
    connect_start, connect_first = (statistics.median(run[2][part] for run in resident) for part in (0, 1))
    calls = run_api_calls(1 + repeats, args)
    (api_cold_start, api_cold_first), warm_calls = calls[0], calls[1:]
    api_warm_start, api_warm_first = (statistics.median(call[part] for call in warm_calls) for part in (0, 1))
    local, local_wall = run_local(args)
    table = [("h3spark launch dist_sync 2w+1s", h3, h3_wall), ("h3spark launch --remote (Connect)", *resident[0][:2]),
             ("plain ps-lite dist_sync 2w+1s", plain, plain_wall),
             ("local kvstore 1 worker", local, local_wall)]
    print(f"{'run':34} {'samples/s/worker':>17} {'time to 0.9 acc (s)':>20} {'wall (s)':>9}")
    for name, results, wall in table:
        reach = max((r["time_to_accuracy_s"] or float("nan")) for r in results)
        print(f"{name:34} {per_worker(results):17,.0f} {reach:20.2f} {wall:9.1f}")
    print(f"time to the workers' start / first step (s; medians of {repeats}): plain {plain_start:.2f} / {plain_first:.2f}, "
          f"h3spark launch {h3_start:.2f} / {h3_first:.2f} (cold), h3spark.train.launch {api_cold_start:.2f} / "
          f"{api_cold_first:.2f} (first call), {api_warm_start:.2f} / {api_warm_first:.2f} (later calls), "
          f"h3spark launch --remote {connect_start:.2f} / {connect_first:.2f} (cold process, resident server), "
          f"{new_session[2][0]:.2f} / {new_session[2][1]:.2f} (the same in a new server session)")
    print(json.dumps({"ratio_vs_plain_launch": round(per_worker(h3) / per_worker(plain), 3),
                      "dist_sync_samples_per_s": round(per_worker(h3), 1),
                      "plain_dist_sync_samples_per_s": round(per_worker(plain), 1),
                      "local_samples_per_s": round(per_worker(local), 1),
                      "time_to_accuracy_s": {"h3spark": h3[0]["time_to_accuracy_s"], "plain": plain[0]["time_to_accuracy_s"],
                                             "local": local[0]["time_to_accuracy_s"]},
                      "startup_overhead_s": round(connect_first - plain_first, 2),
                      "startup_overhead_warm_s": round(api_warm_first - plain_first, 2),
                      "startup_overhead_embedded_s": round(h3_first - plain_first, 2),
                      "startup_overhead_new_session_s": round(new_session[2][1] - plain_first, 2),
                      "time_to_first_step_s": {"plain": round(plain_first, 2), "h3spark": round(h3_first, 2),
                                               "connect": round(connect_first, 2), "connect_new_session": round(new_session[2][1], 2),
                                               "api_first_call": round(api_cold_first, 2), "api_later_calls": round(api_warm_first, 2)},
                      "time_to_worker_start_s": {"plain": round(plain_start, 2), "h3spark": round(h3_start, 2),
                                                 "connect": round(connect_start, 2), "connect_new_session": round(new_session[2][0], 2),
                                                 "api_first_call": round(api_cold_start, 2), "api_later_calls": round(api_warm_start, 2)},
                      "repeats": repeats, "ratio_vs_plain_torch": None, "ratio_fed_vs_resident": None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
