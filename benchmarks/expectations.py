"""Benchmark: what expectations (preprocess.validate) add to the preprocessing they ride on.

    python benchmarks/expectations.py [--quick] [--rows N] [--repeats N]

The data and pipeline of benchmarks/preprocess.py (8 numeric columns with 5 % missing, 3
categorical ones of 20 values; impute -> scale -> one-hot -> assemble; the tasks read the
Parquet input with pyarrow) plus a unique ``id`` column. The same job runs without and with a
``validate:`` section of 45 expectations: row-count bounds; type, not-null fraction, min and max
of every numeric column; type and allowed values of every categorical one; type and uniqueness
of ``id``; PSI drift of x0 and c0 and KS drift of x1 against a reference dataset published
beforehand (every fourth row of the data: a quarter as many rows of the same distributions) whose report holds their
profiles, as the dataset a model was trained on would. One warm local[2] session runs the two arms alternately (plain, checked,
plain, checked, ...) after one untimed run of each; each arm's figure is its median.
``expectations_cost`` = (checked - plain) / plain seconds (target <= 0.15). The last line is JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _preprocess_benchmark():
    """benchmarks/preprocess.py: the one home of the data, the columns and the Spark settings."""
    spec = importlib.util.spec_from_file_location("bench_preprocess", ROOT / "benchmarks" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _preprocess_benchmark()


def make_data(path: Path, rows: int) -> None:
    """benchmarks/preprocess.py's data, plus a unique int64 ``id``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    BENCH.make_data(path, rows)
    start = 0
    for part in sorted(path.glob("*.parquet")):
        table = pq.read_table(part)
        table = table.append_column("id", pa.array(np.arange(start, start + table.num_rows)))
        pq.write_table(table, part, row_group_size=50_000)
        start += table.num_rows


def sample_every(data: Path, path: Path, step: int) -> None:
    """Every ``step``-th row of each file of ``data``, as the reference: the same distributions (each file of
    benchmarks/preprocess.py's data draws its own means, so data made again with fewer rows would differ)."""
    import pyarrow.parquet as pq

    path.mkdir(parents=True)
    for part in sorted(data.glob("*.parquet")):
        table = pq.read_table(part)
        pq.write_table(table.take(list(range(0, table.num_rows, step))), path / part.name)


def validate_section(rows: int, reference: str) -> dict:
    numeric = {name: {"type": "double", "not_null": 0.9, "min": -100, "max": 100} for name in BENCH.NUMERIC}
    categorical = {name: {"type": "string", "allowed": [f"{name}_v{i:02d}" for i in range(20)]}
                   for name in BENCH.CATEGORICAL}
    columns = {**numeric, **categorical, "id": {"type": "integer", "unique": True}}
    columns["x0"]["drift"] = {"reference": reference, "metric": "psi", "max": 0.5}
    columns["x1"]["drift"] = {"reference": reference, "metric": "ks", "max": 0.5}
    columns["c0"]["drift"] = {"reference": reference, "metric": "psi", "max": 0.5}
    return {"on_failure": "fail", "rows": {"min": 1, "max": rows * 2}, "columns": columns}


def config(data: Path, uri: str, validate: dict | None):
    from h3spark.config import H3SparkConfig

    section = {"steps": [
        {"kind": "impute", "columns": BENCH.NUMERIC, "strategy": "mean"},
        {"kind": "standard_scale", "columns": BENCH.NUMERIC},
        {"kind": "one_hot", "columns": BENCH.CATEGORICAL},
        {"kind": "assemble", "columns": BENCH.NUMERIC + BENCH.CATEGORICAL}], "keep": ["id"]}
    if validate is not None:
        section["validate"] = validate
    return H3SparkConfig.model_validate({"name": "bench-expectations", "dataset": {"uri": uri, "overwrite": True},
                                         "source": {"format": "parquet", "path": str(data)}, "preprocess": section})


def timed(spark, data: Path, out: Path, validate: dict | None) -> dict:
    from h3spark.preprocess import preprocess

    uri = str(out / ("checked" if validate else "plain"))
    started = time.perf_counter()
    result = preprocess(config(data, uri, validate), workdir=str(out), spark=spark)
    seconds = time.perf_counter() - started
    assert result.rows_out == result.rows_in, result.summary()
    if validate is not None:
        assert result.expectations["failed"] == 0, result.expectations
    return {"seconds": seconds, "fit_s": result.fit_s, "transform_s": result.transform_s,
            "checked": result.expectations["checked"] if result.expectations else 0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k rows, 2 timed runs per arm (about a minute)")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--repeats", type=int)
    args = parser.parse_args(argv)
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    repeats = args.repeats or (2 if args.quick else 3)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-expectations-") as tmp:
        out, data = Path(tmp), Path(tmp) / "data"
        make_data(data, rows)
        sample_every(data, out / "ref_data", 4)
        spark = BENCH._spark()
        profile = {"profile": ["x0", "x1", "c0"]}  # the reference: a published dataset whose report has profiles
        from h3spark.preprocess import preprocess

        preprocess(config(out / "ref_data", str(out / "reference"), profile), workdir=str(out), spark=spark)
        validate = validate_section(rows, str(out / "reference"))
        arms = {"plain": None, "checked": validate}
        for validate_arm in arms.values():  # untimed: Python workers up, code paths compiled
            timed(spark, data, out, validate_arm)
        runs = {name: [] for name in arms}
        for _ in range(repeats):
            for name, validate_arm in arms.items():
                runs[name].append(timed(spark, data, out, validate_arm))
    return report(rows, runs)


def report(rows: int, runs: dict[str, list[dict]]) -> int:
    medians = {name: {key: statistics.median(run[key] for run in arm) for key in ("seconds", "fit_s", "transform_s")}
               for name, arm in runs.items()}
    plain, checked = medians["plain"]["seconds"], medians["checked"]["seconds"]
    print(f"\n{rows:,} rows, {len(runs['plain'])} timed runs per arm (median), warm local[2] session")
    print(f"{'arm':<10}{'seconds':>10}{'fit s':>10}{'transform s':>14}{'rows/s':>12}  all runs (s)")
    for name, values in medians.items():
        every = ", ".join(f"{run['seconds']:.2f}" for run in runs[name])
        print(f"{name:<10}{values['seconds']:>10.2f}{values['fit_s']:>10.2f}{values['transform_s']:>14.2f}"
              f"{rows / values['seconds']:>12,.0f}  {every}")
    cost = (checked - plain) / plain
    print(f"expectations_cost = ({checked:.2f} - {plain:.2f}) / {plain:.2f} = {cost:.3f} (target <= 0.15), "
          f"{runs['checked'][0]['checked']} expectations")
    print(json.dumps({"expectations_cost": round(cost, 3), "rows": rows, "expectations": runs["checked"][0]["checked"],
                      "plain_s": round(plain, 3), "checked_s": round(checked, 3),
                      "plain_fit_s": round(medians["plain"]["fit_s"], 3),
                      "checked_fit_s": round(medians["checked"]["fit_s"], 3),
                      "runs_s": {name: [round(run["seconds"], 3) for run in arm] for name, arm in runs.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
