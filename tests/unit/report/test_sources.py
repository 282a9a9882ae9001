"""What the commands leave for the report: an actor network's report history (reports.jsonl, written
as the reports arrive) and a gates run's result (gates.json, written when the network closes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from h3spark.cli import main
from h3spark.config import H3SparkConfig
from h3spark.report import read_run

ONLINE = str(Path(__file__).resolve().parents[3] / "conf" / "actors_online.yaml")
QUICK = ["--set", "actors.producers.digits.epochs=1", "--set", "actors.producers.digits.holdout_fraction=0.05"]


def test_an_actor_network_run_leaves_the_history_of_its_reports(tmp_path, capsys):
    assert main(["actors", ONLINE, "--workdir", str(tmp_path), *QUICK]) == 0
    home = tmp_path / "actors" / "actors-online"
    assert f"h3spark report file://{home}\n" in capsys.readouterr().out  # the summary says what to run next
    history = [json.loads(line) for line in (home / "reports.jsonl").read_text().splitlines()]
    assert {record["actor"] for record in history} == {"learner"}
    assert history[-1]["state"] == "stopped" and history[-1]["step"] == 54
    assert [record["at_s"] for record in history] == sorted(record["at_s"] for record in history)
    run = read_run(str(home))
    accuracy = [curve for curve in run.curves if curve.panel == "held-out accuracy"]
    assert [curve.label for curve in accuracy] == ["learner"] and accuracy[0].y[-1] == history[-1]["evaluated"]["accuracy"]


def test_a_gates_network_leaves_its_result_when_it_closes(tmp_path):
    from h3spark.gates import GateNetwork

    section = {"model": {"input_shape": [64], "layers": [{"type": "dense", "name": "logits", "units": 10}]},
               "cut": {"g1": ["logits"]}, "training": {"optimizer": "sgd", "lr": 0.1, "batch_size": 30},
               "data": {"bundled": "digits", "rows": 100}, "sentinels": {"train-1": {"kind": "train", "epochs": 1}}}
    config = H3SparkConfig.model_validate({"name": "closing", "gates": section})
    network = GateNetwork.from_config(config, str(tmp_path))
    network.result.epochs["train-1"] = [{"epoch": 1, "loss": 2.0, "accuracy": 0.25, "seconds": 0.1}]
    result = network.close()  # never started: what it learned so far is still written
    path = tmp_path / "gates" / network.run_id / "gates.json"
    assert network.result_uri == f"file://{path}" and os.path.getsize(path) > 0
    assert json.loads(path.read_text())["epochs"]["train-1"][0]["loss"] == 2.0
    run = read_run(str(path.parent))
    assert run.name == f"closing {result.run_id}" and run.panels == ["training loss", "training accuracy"]
