"""Experiments on local[2] Spark: slots as Spark tasks, failures, timeouts, resume, Ctrl-C,
early stopping across Python workers, determinism at any parallelism, mirrored results."""

import _thread
import json
import os
import threading
import time

import pandas as pd
import pytest

from h3spark import tune


def _sleepy(params, ctx):
    time.sleep(params.get("sleep", 0.05))
    if params.get("fail"):
        raise ValueError(f"bad config x={params['x']}")
    if params.get("hang"):
        time.sleep(600)
    return {"accuracy": float(params["x"]), "pid": os.getpid()}


def _events(experiment_dir):
    with open(os.path.join(experiment_dir.replace("file://", ""), "trials.jsonl")) as handle:
        return [json.loads(line) for line in handle]


def test_grid_runs_trials_as_spark_tasks_and_writes_every_output(spark, tmp_path):
    result = tune.grid_search(_sleepy, {"x": [1, 2, 3, 4], "sleep": [0.2]}, spark=spark, experiment_dir=str(tmp_path / "exp"))
    frame = result.results
    assert list(frame["status"]) == ["completed"] * 4 and result.best_params == {"x": 4, "sleep": 0.2}
    assert set(frame["slot"]) <= {0, 1} and frame["metric_pid"].nunique() == 4  # a fresh process per trial
    assert all(gap < 1000 for gap in result.dispatch_gaps_ms) and len(result.dispatch_gaps_ms) == 4 - frame["slot"].nunique()
    root = tmp_path / "exp"
    for name in ("results.parquet", "results.json", "best.json", "metric_vs_params.png", "trials.jsonl"):
        assert (root / name).stat().st_size > 0
    assert pd.read_parquet(root / "results.parquet")["metric_accuracy"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert all((root / "trials" / name).is_dir() for name in frame["name"])
    assert not spark.sparkContext.statusTracker().getActiveJobsIds()


def test_failures_and_timeouts_are_recorded_and_the_search_goes_on(spark, tmp_path):
    space = {"x": [1, 2, 3], "fail": [False, True], "hang": [False]}
    result = tune.grid_search(_sleepy, space, spark=spark, experiment_dir=str(tmp_path / "e1"))
    frame = result.results.set_index("trial_id")
    assert list(frame["status"]) == ["completed", "failed"] * 3
    assert "ValueError: bad config x=1" in frame.loc[1, "error"] and result.best_params["x"] == 3
    started = time.monotonic()
    timed = tune.grid_search(_sleepy, {"x": [1, 2], "hang": [True, False]}, timeout_s=3, spark=spark,
                             experiment_dir=str(tmp_path / "e2"))
    assert time.monotonic() - started < 30
    statuses = timed.results.set_index("trial_id")["status"].to_dict()
    assert statuses == {0: "timeout", 1: "completed", 2: "timeout", 3: "completed"}
    assert "timeout_s=3" in timed.results.set_index("trial_id").loc[0, "error"]


def test_a_resumed_search_skips_finished_trials_and_extends(spark, tmp_path):
    where = str(tmp_path / "exp")
    space = {"x": tune.Float(0, 1)}
    first = tune.random_search(_sleepy, space, samples=3, seed=5, spark=spark, experiment_dir=where)
    second = tune.random_search(_sleepy, space, samples=5, seed=5, spark=spark, experiment_dir=where)
    started = [event["trial_id"] for event in _events(where) if event["event"] == "started"]
    assert sorted(started) == [0, 1, 2, 3, 4]  # nothing ran twice
    assert second.results["param_x"].tolist()[:3] == first.results["param_x"].tolist()
    with pytest.raises(Exception, match="was made with seed=5, not seed=6"):
        tune.random_search(_sleepy, space, samples=5, seed=6, spark=spark, experiment_dir=where)


def test_ctrl_c_cancels_the_job_group_and_leaves_a_consistent_table(spark, tmp_path):
    where = str(tmp_path / "exp")
    timer = threading.Timer(2.0, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        tune.grid_search(_sleepy, {"x": [1, 2, 3, 4, 5, 6], "sleep": [1.5]}, spark=spark, experiment_dir=where)
    frame = pd.read_parquet(tmp_path / "exp" / "results.parquet")
    assert set(frame["status"]) <= {"completed", "cancelled"} and "cancelled" in set(frame["status"])
    deadline = time.monotonic() + 20
    while spark.sparkContext.statusTracker().getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not spark.sparkContext.statusTracker().getActiveJobsIds()
    done_before = set(frame.loc[frame["status"] == "completed", "trial_id"])
    resumed = tune.grid_search(_sleepy, {"x": [1, 2, 3, 4, 5, 6], "sleep": [1.5]}, spark=spark, experiment_dir=where)
    assert list(resumed.results["status"]) == ["completed"] * 6
    finished = [event["trial_id"] for event in _events(where) if event["event"] == "finished" and event["status"] == "completed"]
    assert sorted(finished) == list(range(6)) and not done_before & set(finished[len(done_before):])


def _learning_curve(params, ctx):
    for step in range(6):
        ctx.report({"accuracy": params["x"] * (step + 1)}, step=step)
        time.sleep(0.05)
    return {"accuracy": params["x"] * 6}


def test_median_stopping_stops_laggards_across_python_workers(spark, tmp_path):
    result = tune.grid_search(_learning_curve, {"x": [1.0, 1.1, 1.2, 0.1, 1.3, 0.2]}, parallelism=1, spark=spark,
                              early_stopping={"rule": "median", "grace_steps": 1, "min_trials": 3},
                              experiment_dir=str(tmp_path / "exp"))
    statuses = result.results.set_index("param_x")["status"].to_dict()
    assert statuses == {1.0: "completed", 1.1: "completed", 1.2: "completed", 0.1: "stopped", 1.3: "completed", 0.2: "stopped"}
    stopped = result.results.set_index("param_x").loc[0.1]
    assert stopped["metric_accuracy"] == pytest.approx(0.2)  # stopped at the first report after the grace step


def _quadratic(params, ctx):
    return {"accuracy": -((params["x"] - 0.3) ** 2) - (params["n"] - 4) ** 2, "loss": (params["x"] - 0.3) ** 2 + (params["n"] - 4) ** 2}


@pytest.mark.parametrize("search", ["grid", "random", "evolution"])
def test_same_seed_same_trials_at_any_parallelism_and_mirrored_results(spark, tmp_path, search):
    space = {"x": [0.0, 0.25, 0.5], "n": [2, 4]} if search == "grid" else {"x": tune.Float(0, 1), "n": tune.Int(1, 8)}
    run = {"grid": lambda **kw: tune.grid_search(_quadratic, space, **kw),
           "random": lambda **kw: tune.random_search(_quadratic, space, samples=6, seed=3, **kw),
           "evolution": lambda **kw: tune.differential_evolution(_quadratic, space, generations=3, population=4, seed=3, **kw)}[search]
    one = run(parallelism=1, spark=spark, experiment_dir=str(tmp_path / "p1"))
    two = run(parallelism=2, spark=spark, experiment_dir=str(tmp_path / "p2"))
    mirrored = run(parallelism=2, spark=spark, metric="loss", direction="min", experiment_dir=str(tmp_path / "m"))
    columns = ["trial_id", "param_x", "param_n"]
    assert one.results[columns].equals(two.results[columns]) and one.results[columns].equals(mirrored.results[columns])
    assert one.best_params == two.best_params == mirrored.best_params
