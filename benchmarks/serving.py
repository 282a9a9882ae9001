"""Benchmark: batch inference on Spark, the KServe V2 server, and what expectations cost.

    python benchmarks/serving.py [--quick] [--rows N] [--requests N]

- Batch inference: ``h3spark.serve.predict`` on local[2] (Parquet in, predictions dataset out, no
  pipeline) against a plain loop on one core: pandas reads the Parquet, ``model.predict`` on chunks of
  10,000 rows, pandas writes the predictions. The model is an MLP 64-128-10 (numpy engine); every
  process does its math on one thread. ``predict_vs_pandas`` = Spark rows/s / pandas rows/s (warm:
  the second Spark run; the first, with the Python workers starting, is reported as cold).
- Server: ``h3spark serve`` in its own process, one client with a keep-alive session sending
  requests one after another (latency p50/p99, requests/s) and four clients at once (requests/s),
  at batch 1 and 64; against ``model.predict`` called directly in Python on the same batches.
  ``serve_overhead_vs_direct`` = server p50 / direct p50 at batch 1; ``serve_added_ms_*`` the
  difference. Each request carries different rows (the same set for both).
- ``expectations_cost``: benchmarks/expectations.py run as a process (its own Spark), its last line.
  onnxruntime is not in the pinned environment (see benchmarks/RESULTS.md); ``onnx`` is measured here
  only where the package imports.

The last line is JSON.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy: one core per process
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WIDTH, HIDDEN, CLASSES = 64, 128, 10
CHUNK = 10_000
SPARK_CONF = {"spark.ui.enabled": False, "spark.sql.shuffle.partitions": 2, "spark.default.parallelism": 2}


def make_model(folder: Path) -> str:
    from h3spark.train.engines.model import build_model
    from h3spark.train.engines.spec import mlp_spec

    return build_model("numpy", mlp_spec([WIDTH], [HIDDEN], CLASSES), seed=0).save(str(folder / "model.safetensors"))


def make_data(folder: Path, rows: int) -> Path:
    """``rows`` rows of id + a list<float> vector of 64 values, in 4 Parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    rng = np.random.default_rng(0)
    per_file = -(-rows // 4)
    for index, start in enumerate(range(0, rows, per_file)):
        count = min(per_file, rows - start)
        values = rng.random((count, WIDTH), dtype=np.float32)
        vectors = pa.ListArray.from_arrays(pa.array(np.arange(0, count * WIDTH + 1, WIDTH, dtype=np.int32)),
                                           pa.array(values.reshape(-1)))
        pq.write_table(pa.table({"id": np.arange(start, start + count), "features": vectors}),
                       folder / f"part-{index}.parquet")
    return folder


def spark_predict(spark, model: str, data: Path, out: str) -> float:
    from h3spark.config import H3SparkConfig
    from h3spark.serve import predict

    config = H3SparkConfig.model_validate({"name": "bench-predict", "predict": {
        "model": model, "use_pipeline": False, "keep": ["id"], "input": {"format": "parquet", "path": str(data)},
        "output": {"uri": out, "overwrite": True}}})
    started = time.perf_counter()
    result = predict(config, spark=spark)
    return result.rows_out / (time.perf_counter() - started)


def pandas_predict(model_path: str, data: Path, out: Path) -> float:
    """The plain loop: pandas in, model.predict per chunk, pandas out, one thread."""
    import pandas as pd

    from h3spark.serve import find_model

    started = time.perf_counter()
    model = find_model(model_path).load()
    frame = pd.read_parquet(data)
    parts = []
    for start in range(0, len(frame), CHUNK):
        chunk = frame.iloc[start:start + CHUNK]
        probabilities = model.predict(np.stack(chunk["features"].to_numpy()))
        parts.append(pd.DataFrame({"id": chunk["id"].to_numpy(), "prediction": probabilities.argmax(axis=1),
                                   "probability": probabilities.max(axis=1), "probabilities": list(probabilities)}))
    pd.concat(parts).to_parquet(out)
    return len(frame) / (time.perf_counter() - started)


def batch_inference(rows: int, folder: Path) -> dict:
    from h3spark.config import SparkConfig
    from h3spark.spark import get_spark, stop_spark

    model, data = make_model(folder), make_data(folder / "data", rows)
    pandas_rate = pandas_predict(model, data, folder / "pandas.parquet")
    spark = get_spark(SparkConfig(master="local[2]", app_name="bench-serving", conf=SPARK_CONF))
    try:
        cold = spark_predict(spark, model, data, str(folder / "spark"))
        warm = spark_predict(spark, model, data, str(folder / "spark"))
    finally:
        stop_spark()
    print(f"batch inference, {rows:,} rows: Spark local[2] {warm:,.0f} rows/s warm ({cold:,.0f} cold), "
          f"pandas + model.predict on one core {pandas_rate:,.0f} rows/s")
    return {"rows": rows, "spark_rows_per_s": round(warm), "spark_cold_rows_per_s": round(cold),
            "pandas_rows_per_s": round(pandas_rate), "predict_vs_pandas": round(warm / pandas_rate, 3)}


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return 1000 * ordered[len(ordered) // 2], 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _bodies(batch: int, count: int) -> tuple[list[np.ndarray], list[dict]]:
    rng = np.random.default_rng(batch)
    arrays = [rng.random((batch, WIDTH), dtype=np.float32) for _ in range(count)]
    return arrays, [{"inputs": [{"name": "input", "shape": [batch, WIDTH], "datatype": "FP32",
                                 "data": array.reshape(-1).tolist()}]} for array in arrays]


def _sequential(url: str, bodies: list[dict]) -> tuple[list[float], float]:
    import requests

    session, latencies = requests.Session(), []
    for body in bodies[:5]:  # warm the connection and the server's code paths
        session.post(url, json=body).raise_for_status()
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        response = session.post(url, json=body)
        latencies.append(time.perf_counter() - sent)
        response.raise_for_status()
    return latencies, len(bodies) / (time.perf_counter() - started)


def _concurrent(url: str, bodies: list[dict], clients: int = 4) -> float:
    import requests

    def client(share: list[dict]) -> None:
        session = requests.Session()
        for body in share:
            session.post(url, json=body).raise_for_status()

    threads = [threading.Thread(target=client, args=(bodies[index::clients],)) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(bodies) / (time.perf_counter() - started)


def _direct(model, arrays: list[np.ndarray]) -> list[float]:
    for array in arrays[:5]:
        model.predict(array)
    latencies = []
    for array in arrays:
        started = time.perf_counter()
        model.predict(array)
        latencies.append(time.perf_counter() - started)
    return latencies


def _start_server(model: str) -> tuple[subprocess.Popen, str]:
    command = [str(Path(sys.executable).parent / "h3spark"), "serve", model, "--name", "bench", "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in server.stdout:
        if "/v2/models/" in line:
            return server, line.strip().split("/v2/models/")[0]
    raise RuntimeError(f"h3spark serve did not start: {server.stderr.read()}")


def serving(requests_per_batch: int, folder: Path) -> dict:
    from h3spark.serve import find_model

    model_path = make_model(folder)
    model = find_model(model_path).load()
    server, url = _start_server(model_path)
    results = {}
    try:
        for batch in (1, 64):
            arrays, bodies = _bodies(batch, requests_per_batch)
            latencies, rate = _sequential(f"{url}/v2/models/bench/infer", bodies)
            concurrent = _concurrent(f"{url}/v2/models/bench/infer", bodies)
            direct = _direct(model, arrays)
            (p50, p99), (d50, d99) = _percentiles(latencies), _percentiles(direct)
            results[batch] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "requests_per_s": round(rate),
                              "requests_per_s_4_clients": round(concurrent), "direct_p50_ms": round(d50, 4),
                              "direct_p99_ms": round(d99, 4), "direct_calls_per_s": round(len(direct) / sum(direct))}
            print(f"serve batch {batch:>2}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {rate:,.0f} requests/s "
                  f"({concurrent:,.0f} with 4 clients); model.predict directly: p50 {d50:.3f} ms, p99 {d99:.3f} ms")
    finally:
        server.terminate()
        server.communicate(timeout=30)
    return results


def expectations_cost(quick: bool) -> dict:
    """benchmarks/expectations.py's figures (its last line), run in its own process."""
    command = [sys.executable, str(ROOT / "benchmarks" / "expectations.py")]
    command += ["--quick"] if quick else []
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"benchmarks/expectations.py failed (exit {done.returncode}): {done.stderr[-1500:]}")
        return {"expectations_cost": None}
    print("\n".join(lines[-5:-1]))
    return json.loads(lines[-1])


def onnx_figures() -> dict | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("onnxruntime: not installed in this environment (see benchmarks/RESULTS.md for a measurement)")
        return None
    return {"onnxruntime": "installed; measured separately (benchmarks/RESULTS.md)"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k rows, 300 requests per batch size (about a minute "
                        "plus the expectations benchmark's quick run)")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--requests", type=int)
    args = parser.parse_args(argv)
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    count = args.requests or (300 if args.quick else 2000)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        for part in ("batch", "serve"):
            (Path(tmp) / part).mkdir()
        batch = batch_inference(rows, Path(tmp) / "batch")
        served = serving(count, Path(tmp) / "serve")
    checks = expectations_cost(args.quick)
    one = served[1]
    summary = {"predict_vs_pandas": batch["predict_vs_pandas"], "serve_p99_ms_batch1": one["p99_ms"],
               "serve_overhead_vs_direct": round(one["p50_ms"] / one["direct_p50_ms"], 1),
               "expectations_cost": checks.get("expectations_cost"),
               "serve_added_ms_batch1": round(one["p50_ms"] - one["direct_p50_ms"], 3),
               "serve_added_ms_batch64": round(served[64]["p50_ms"] - served[64]["direct_p50_ms"], 3),
               "batch_inference": batch, "serve": {f"batch{size}": figures for size, figures in served.items()},
               "onnx": onnx_figures(), "requests_per_batch": count}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
