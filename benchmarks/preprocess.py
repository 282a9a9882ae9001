"""Benchmark: h3spark preprocessing vs a pyspark.ml Pipeline vs pandas + scikit-learn.

    python benchmarks/preprocess.py [--quick] [--rows N]

The same pipeline three ways, each reading the same Parquet input and writing Parquet:
impute (mean) -> standard scale -> one-hot -> assemble, on N synthetic rows of 8 numeric
columns (5% missing) and 3 categorical columns (20 values each). Each method runs in its
own process (its own JVM for the Spark ones); rows/s counts read + fit + transform + write,
after the SparkSession is up; the *_warm rows time the Spark arms again in sessions that have
already run one tiny Python task and one JVM job (Python workers started). h3spark's tasks read
the Parquet input themselves with pyarrow (preprocess.reader: auto); full runs add
h3spark_spark_reader, the same job with Spark's reader, as a CSV, JSON or Kafka source gets.
Peak memory is the largest summed RSS of the method's process tree (Python, JVM and Python
workers), sampled every 0.2 s. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

NUMERIC = [f"x{i}" for i in range(8)]
CATEGORICAL = [f"c{i}" for i in range(3)]
# Spark's own file splitting (about one input partition per core on 2 cores): both Spark arms read the same splits
SPARK_CONF = {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": 4, "spark.ui.enabled": False}


def make_data(path: Path, rows: int, files: int = 4) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    path.mkdir(parents=True)
    per_file = -(-rows // files)
    for index in range(files):
        n = min(per_file, rows - index * per_file)
        columns = {}
        for name in NUMERIC:
            values = rng.normal(rng.uniform(-5, 5), rng.uniform(0.5, 3), n)
            columns[name] = pa.array(values, mask=rng.random(n) < 0.05)
        for name in CATEGORICAL:
            columns[name] = pa.array(np.array([f"{name}_v{i:02d}" for i in range(20)])[rng.integers(0, 20, n)])
        columns["label"] = pa.array(rng.integers(0, 2, n))
        pq.write_table(pa.table(columns), path / f"part-{index}.parquet", row_group_size=50_000)


def _spark():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from h3spark.config import SparkConfig
    from h3spark.spark import get_spark

    return get_spark(SparkConfig(master="local[2]", app_name="bench-preprocess", conf=SPARK_CONF))


def run_h3spark(data: Path, out: Path, reader: str = "auto") -> float:
    from h3spark.config import H3SparkConfig
    from h3spark.preprocess import preprocess

    spark = _spark()
    config = H3SparkConfig.model_validate({
        "name": "bench", "source": {"format": "parquet", "path": str(data)},
        "dataset": {"uri": str(out / f"h3spark_{reader}")},
        "preprocess": {"reader": reader, "steps": [
            {"kind": "impute", "columns": NUMERIC, "strategy": "mean"},
            {"kind": "standard_scale", "columns": NUMERIC},
            {"kind": "one_hot", "columns": CATEGORICAL},
            {"kind": "assemble", "columns": NUMERIC + CATEGORICAL}]}})
    started = time.perf_counter()
    result = preprocess(config, workdir=str(out), spark=spark)
    elapsed = time.perf_counter() - started
    assert result.rows_out == result.rows_in, result.summary()
    return elapsed


def run_sparkml(data: Path, out: Path) -> float:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import Imputer, OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler

    spark = _spark()
    started = time.perf_counter()
    frame = spark.read.parquet(str(data))
    imputed = [f"{name}_i" for name in NUMERIC]
    indexed = [f"{name}_idx" for name in CATEGORICAL]
    encoded = [f"{name}_oh" for name in CATEGORICAL]
    pipeline = Pipeline(stages=[
        Imputer(inputCols=NUMERIC, outputCols=imputed, strategy="mean"),
        VectorAssembler(inputCols=imputed, outputCol="numeric"),
        StandardScaler(inputCol="numeric", outputCol="scaled", withMean=True, withStd=True),
        StringIndexer(inputCols=CATEGORICAL, outputCols=indexed, handleInvalid="keep"),
        OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"),
        VectorAssembler(inputCols=["scaled"] + encoded, outputCol="features"),
    ])
    model = pipeline.fit(frame)
    model.transform(frame).select("features", "label").write.mode("overwrite").parquet(str(out / "sparkml"))
    return time.perf_counter() - started


def run_sklearn(data: Path, out: Path) -> float:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    started = time.perf_counter()
    frame = pd.read_parquet(data)
    transformer = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), NUMERIC),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32), CATEGORICAL),
    ])
    matrix = np.ascontiguousarray(transformer.fit_transform(frame), dtype=np.float32)
    features = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
    pq.write_table(pa.table({"features": features, "label": frame["label"].to_numpy()}), out / "sklearn.parquet")
    return time.perf_counter() - started


def _warm_session(spark) -> None:
    """One tiny job of each kind, so that the timing starts with Python workers up and the
    JVM's code paths compiled; both Spark arms get the same warm-up."""
    spark.range(16, numPartitions=2).mapInArrow(lambda batches: batches, "id long").count()
    spark.range(16, numPartitions=2).selectExpr("id % 3 AS k").groupBy("k").count().collect()


def run_h3spark_warm(data: Path, out: Path) -> float:
    _warm_session(_spark())
    return run_h3spark(data, out)


def run_sparkml_warm(data: Path, out: Path) -> float:
    _warm_session(_spark())
    return run_sparkml(data, out)


def run_h3spark_spark_reader(data: Path, out: Path) -> float:
    return run_h3spark(data, out, reader="spark")


METHODS = {"h3spark": run_h3spark, "sparkml": run_sparkml, "sklearn": run_sklearn,
           "h3spark_warm": run_h3spark_warm, "sparkml_warm": run_sparkml_warm,
           "h3spark_spark_reader": run_h3spark_spark_reader}


def _tree_rss_bytes(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(method: str, data: Path, out: Path) -> dict:
    """Run one method in a child process; return its seconds and peak tree RSS."""
    process = subprocess.Popen([sys.executable, __file__, "--run", method, "--data", str(data), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = [0]

    def sample():
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss_bytes(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{method} failed (exit {process.returncode}); run with --run {method} to see why")
    return {"seconds": json.loads(output.strip().splitlines()[-1])["seconds"], "peak_mib": peak[0] / 2**20}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k rows instead of 1M")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--run", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        print(json.dumps({"seconds": METHODS[args.run](args.data, args.out)}))
        return 0
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        data = Path(tmp) / "input"
        make_data(data, rows)
        results = {method: measure(method, data, Path(tmp)) for method in ("h3spark", "sparkml", "sklearn")}
        (Path(tmp) / "warm").mkdir()
        results.update({method: measure(method, data, Path(tmp) / "warm") for method in ("h3spark_warm", "sparkml_warm")})
        if not args.quick:
            results["h3spark_spark_reader"] = measure("h3spark_spark_reader", data, Path(tmp))
    print(f"\n{'method':<20} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'peak MiB':>9}")
    for method, result in results.items():
        print(f"{method:<20} {rows:>9} {result['seconds']:>8.1f} {rows / result['seconds']:>10.0f} {result['peak_mib']:>9.0f}")
    figures = {"rows": rows, **{f"{m}_rows_per_s": round(rows / r["seconds"]) for m, r in results.items()},
               **{f"{m}_peak_mib": round(r["peak_mib"]) for m, r in results.items()}}
    figures["ratio_vs_sparkml"] = round(figures["h3spark_rows_per_s"] / figures["sparkml_rows_per_s"], 2)
    # the same pipelines in sessions that already ran a Python task (as in `h3spark run`, where
    # ingest or an earlier stage has started the Python workers): the ~4 s worker start excluded
    figures["ratio_vs_sparkml_warm"] = round(figures["h3spark_warm_rows_per_s"] / figures["sparkml_warm_rows_per_s"], 2)
    spark_reader = figures.get("h3spark_spark_reader_rows_per_s")
    figures["ratio_spark_reader_vs_sparkml"] = round(spark_reader / figures["sparkml_rows_per_s"], 2) if spark_reader else None
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
