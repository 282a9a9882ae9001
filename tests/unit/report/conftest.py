"""Run folders for the report tests, written by h3spark's own writers: a real threads-executor search
(trials.jsonl, results.json, best.json, each trial's TensorBoard events), a training log dir written
with the engines' SummaryWriter, an actor network's state file and report history, a gates result."""

from __future__ import annotations

import time

import pytest

from h3spark.actors._history import ReportHistory
from h3spark.actors._registry import write_state
from h3spark.gates._record import write_result
from h3spark.gates._report import GatesResult


def train_fn(params, ctx):
    if params["hidden"] == 16 and params["lr"] == 1.0:
        raise RuntimeError("this trial fails on purpose")
    for step in range(4):
        ctx.report({"accuracy": 0.5 + 0.1 * step * params["lr"], "loss": 1.0 / (step + 1)}, step=step)
    return {"accuracy": 0.6 + params["lr"] / 10, "loss": 0.2}


@pytest.fixture(scope="session")
def experiment_dir(tmp_path_factory) -> str:
    """A 2 x 2 grid on the threads executor; trial 3 fails."""
    from h3spark.tune import grid_search

    folder = str(tmp_path_factory.mktemp("experiment") / "search")
    grid_search(train_fn, {"lr": [0.1, 1.0], "hidden": [8, 16]}, metric="accuracy", experiment_dir=folder,
                executor="threads", parallelism=2)
    return folder


@pytest.fixture
def training_dir(tmp_path_factory) -> str:
    """A training log dir as rank 0 writes it: train/loss every 10 steps, then train/samples_per_s."""
    from h3spark.train._tensorboard import summary_writer

    folder = str(tmp_path_factory.mktemp("logs") / "train_run")
    writer = summary_writer(folder)
    for step in range(10, 60, 10):
        writer.add_scalar("train/loss", 2.0 / step, step)
    writer.add_scalar("train/samples_per_s", 1234.0, 50)
    writer.close()
    return folder


def actor_report(step: int, loss: float | None, accuracy: float | None, state: str = "running") -> dict:
    return {"op": "report", "actor": "learner", "state": state, "step": step, "handled": step // 2, "loss": loss,
            "rows_trained": 32 * step, "evaluated": None if accuracy is None else {"rows": 90, "accuracy": accuracy,
                                                                                    "loss": 0.3}}


@pytest.fixture
def actors_dir(tmp_path) -> str:
    home = f"file://{tmp_path}/actors/net"
    started = time.time_ns()
    history = ReportHistory(home, started)
    reports = [actor_report(0, None, None), actor_report(20, 0.9, 0.7), actor_report(54, 0.4, 0.9, "stopped")]
    for index, report in enumerate(reports):
        history.append(report, started + index * 500_000_000)
    history.close()
    write_state(home, {"network": "net", "state": "stopped", "transport": {"kind": "memory"},
                       "actors": {"learner": reports[-1]}})
    return str(tmp_path / "actors" / "net")


def gates_result() -> GatesResult:
    result = GatesResult("gates-test", "ab12cd34", "threads", "stash")
    result.epochs["train-1"] = [{"op": "epoch", "epoch": epoch, "loss": 2.0 / epoch, "accuracy": 0.3 * epoch,
                                 "seconds": 0.05, "versions": {"g1": [0, 4]}} for epoch in (1, 2, 3)]
    result.scores["val"] = [{"op": "score", "kind": "validation", "pass": index, "loss": 1.5 / index,
                             "accuracy": 0.3 * index, "rows": 60, "at_s": 0.05 * index} for index in (1, 2)]
    result.gates = {"g1": {"version": 18, "delays": {"0": 2, "1": 16}}, "g2": {"version": 18, "delays": {"0": 17}}}
    return result


@pytest.fixture
def gates_dir(tmp_path) -> str:
    write_result(gates_result(), f"file://{tmp_path}/gates/ab12cd34")
    return str(tmp_path / "gates" / "ab12cd34")
