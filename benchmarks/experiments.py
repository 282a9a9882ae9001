"""Benchmark: 16 trials of a fixed-cost objective (sleep 0.5 s) at parallelism 2.

    python benchmarks/experiments.py [--quick]

Measures, in one run on a warm local[2] session: h3spark's grid search, the same trials
one after another in one process, and hyperopt's SparkTrials(parallelism=2) (null when
hyperopt is not installed). Also the dispatch gap (one trial's end to the next trial's
start on the same slot). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np

TRIAL_S = 0.5


def objective(params, ctx=None):
    time.sleep(TRIAL_S)
    return {"accuracy": float(params["x"])}


def run_h3spark(spark, trials: int, workdir: str):
    from h3spark import tune

    started = time.perf_counter()
    result = tune.grid_search(objective, {"x": list(range(trials))}, parallelism=2, spark=spark, experiment_dir=workdir)
    wall = time.perf_counter() - started
    assert (result.results["status"] == "completed").all()
    return wall, result.dispatch_gaps_ms


def run_sequential(trials: int) -> float:
    started = time.perf_counter()
    for x in range(trials):
        objective({"x": x})
    return time.perf_counter() - started


def run_sparktrials(trials: int):
    try:
        from hyperopt import STATUS_OK, SparkTrials, fmin, hp, tpe
    except ImportError as error:
        return None, f"hyperopt not installed ({error})"

    def fn(x):
        time.sleep(TRIAL_S)
        return {"loss": -x, "status": STATUS_OK}

    started = time.perf_counter()
    fmin(fn, hp.uniform("x", 0, 1), algo=tpe.suggest, max_evals=trials, trials=SparkTrials(parallelism=2),
         show_progressbar=False, rstate=np.random.default_rng(0))
    return time.perf_counter() - started, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition (about a minute)")
    args = parser.parse_args(argv)
    from h3spark.config import SparkConfig
    from h3spark.spark import get_spark

    spark = get_spark(SparkConfig(master="local[2]", app_name="bench-experiments", conf={"spark.ui.enabled": False}))
    spark.sparkContext.parallelize(range(2), 2).count()  # warm session, as in MEASURED.md
    trials, repeats = 16, 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        run_h3spark(spark, 4, f"{tmp}/warm")  # Python workers started, modules imported
        h3 = [run_h3spark(spark, trials, f"{tmp}/run{i}") for i in range(repeats)]
    walls, gaps = [wall for wall, _ in h3], [gap for _, run_gaps in h3 for gap in run_gaps]
    sequential = run_sequential(trials)
    sparktrials, why = run_sparktrials(trials)
    h3_wall = float(np.median(walls))
    rows = [("h3spark grid_search, parallelism 2", h3_wall), ("sequential, one process", sequential),
            ("hyperopt SparkTrials(parallelism=2)", sparktrials), ("ideal (16 x 0.5 s / 2)", trials * TRIAL_S / 2)]
    print(f"{'':40s} {'wall_s':>8s}")
    for label, wall in rows:
        print(f"{label:40s} {wall if wall is None else round(wall, 2)!s:>8s}")
    p50, p99 = float(np.percentile(gaps, 50)), float(np.percentile(gaps, 99))
    print(f"dispatch gap over {len(gaps)} gaps: p50 {p50:.1f} ms, p99 {p99:.1f} ms; h3spark walls {[round(w, 2) for w in walls]}")
    if why:
        print(f"SparkTrials: {why}")
    spark.stop()
    print(json.dumps({"trials": trials, "trial_s": TRIAL_S, "parallelism": 2, "h3spark_wall_s": round(h3_wall, 3),
                      "sequential_wall_s": round(sequential, 3),
                      "sparktrials_wall_s": None if sparktrials is None else round(sparktrials, 3),
                      "speedup_vs_sequential": round(sequential / h3_wall, 3),
                      "ratio_vs_sparktrials": None if sparktrials is None else round(h3_wall / sparktrials, 3),
                      "dispatch_gap_ms_p50": round(p50, 2), "dispatch_gap_ms_p99": round(p99, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
