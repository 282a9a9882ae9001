"""A whole experiment against a slot that sends what no trial of ours would, a damaged trial log,
and metrics that are not numbers: refused, skipped or warned about, never a crash or a silent drop."""

import json
import logging
import socket
import threading
import time

from h3spark import tune
from h3spark.tune._experiment import Experiment
from h3spark.tune._search import SingleTrial


class _ScriptedSlot:
    """An executor whose one slot is ``script(setup)`` speaking the wire protocol itself."""

    host = "127.0.0.1"

    def __init__(self, script):
        self._script = script
        self._thread = None
        self.errors = []

    def default_slots(self):
        return 1

    def start(self, slots, train_fn, setup):
        self._thread = threading.Thread(target=self._run_script, args=(setup,), daemon=True)
        self._thread.start()

    def _run_script(self, setup):
        try:
            self._script(setup)
        except Exception as error:  # noqa: BLE001 - raised again by join(), on the driver
            self.errors.append(error)

    def finished(self):
        return self._thread is not None and not self._thread.is_alive()

    def cancel(self):
        """The script ends when the dispatcher answers done or hangs up."""

    def join(self, timeout_s=None):
        self._thread.join(timeout_s)
        if self.errors:
            raise self.errors[0]


def _slot_sending(result_fields):
    """A slot (with the token) that takes its trial and returns a completed result with ``result_fields`` added."""
    def script(setup):
        with socket.create_connection(tuple(setup["address"]), timeout=10) as sock, sock.makefile("rb") as replies:
            def ask(message):
                sock.sendall(json.dumps({**message, "token": setup.get("token")}).encode() + b"\n")
                return json.loads(replies.readline() or "null")

            trial = ask({"op": "next", "slot": 0, "result": None})["trial"]
            result = {"trial_id": trial["trial_id"], "slot": 0, "status": "completed", "metrics": {"accuracy": 99.0},
                      "started_at": time.time() - 1, "ended_at": time.time(), **result_fields}
            script.reply = ask({"op": "next", "slot": 0, "result": result})
    return script


def _run(tmp_path, script):
    experiment = Experiment(SingleTrial({"x": 1}), lambda params, ctx: {}, metric="accuracy", direction="max",
                            experiment_dir=str(tmp_path / "exp"), executor=_ScriptedSlot(script))
    return experiment.run()


def test_a_slot_cannot_name_the_directory_copied_to_best_model(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "model").mkdir(parents=True)
    (elsewhere / "model" / "secret.txt").write_text("not the experiment's")
    script = _slot_sending({"logdir": str(elsewhere), "model": "model/secret.txt"})
    result = _run(tmp_path, script)
    assert not (tmp_path / "exp" / "best_model").exists()
    row = result.results.iloc[0]
    assert row["status"] == "failed" and "result.logdir: Extra inputs are not permitted" in row["error"]
    assert script.reply == {"error": row["error"].split(": ", 1)[1]}
    assert row["logdir"] == str(tmp_path / "exp" / "trials" / tune.trial_dirname(0, {"x": 1}))


def test_a_malformed_timestamp_is_refused_and_the_driver_finishes(tmp_path):
    result = _run(tmp_path, _slot_sending({"started_at": "yesterday"}))
    row = result.results.iloc[0]
    assert row["status"] == "failed" and "result.started_at: Input should be a valid number" in row["error"]
    assert result.best_trial_id is None
    assert "1 messages to the experiment's dispatcher were refused" in result.warnings[0]
    assert json.loads((tmp_path / "exp" / "best.json").read_text())["warnings"] == result.warnings


def test_resume_skips_a_bad_record_of_an_old_log_naming_its_line(tmp_path, caplog):
    exp = tmp_path / "exp"
    exp.mkdir()
    events = [{"event": "experiment", "search": "grid", "metric": "accuracy", "direction": "max", "seed": None},
              {"event": "started", "trial_id": 0, "params": {"x": 1}, "generation": 0, "slot": 0},
              # what an older driver stored from an unchecked message
              {"event": "finished", "trial_id": 0, "params": {"x": 1}, "generation": 0, "status": "completed",
               "started_at": "yesterday", "ended_at": 5.0, "metrics": {"accuracy": 1e9}, "logdir": "/etc"},
              {"event": "started", "trial_id": 1, "params": {"x": 2}, "generation": 0, "slot": 0},
              {"event": "finished", "trial_id": 1, "params": {"x": 2}, "generation": 0, "status": "completed",
               "started_at": 1.0, "ended_at": 2.0, "metrics": {"accuracy": 2.0}, "logdir": "/etc"}]
    (exp / "trials.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))

    def fn(params, ctx):
        return {"accuracy": float(params["x"])}

    with caplog.at_level(logging.WARNING, logger="h3spark.tune._log"):
        result = tune.grid_search(fn, {"x": [1, 2]}, executor="threads", experiment_dir=str(exp))
    assert f"skipped line 3 of {(exp / 'trials.jsonl').as_uri()}: started_at: Input should be a valid number" in caplog.text
    assert result.results["status"].tolist() == ["completed", "completed"]
    assert result.best_trial_id == 1 and result.best_metrics == {"accuracy": 2.0}
    assert result.best_logdir == f"{exp.as_uri()}/trials/{tune.trial_dirname(1, {'x': 2})}"  # not the logged "/etc"
    assert result.results.set_index("trial_id").loc[0, "metric_accuracy"] == 1.0  # trial 0 ran again


def test_a_non_numeric_objective_fails_the_trial_naming_the_value(tmp_path):
    result = tune.launch(lambda params, ctx: {"accuracy": "high"}, {}, executor="threads", experiment_dir=str(tmp_path))
    row = result.results.iloc[0]
    assert row["status"] == "failed"
    assert "train_fn returned accuracy='high' (str); the metric must be a number" in row["error"]


def test_non_numeric_metrics_are_warned_about_once_and_listed_in_the_summary(tmp_path, caplog):
    def fn(params, ctx):
        ctx.report({"accuracy": 0.5, "phase": "warmup"}, step=0)
        ctx.report({"accuracy": 0.6, "phase": "warmup"}, step=1)
        return {"accuracy": 1.0, "note": "kept", "loss": float("nan")}

    with caplog.at_level(logging.WARNING, logger="h3spark.tune._results"):
        result = tune.launch(fn, {}, executor="threads", experiment_dir=str(tmp_path))
    assert result.warnings == [
        "trial 0 reported metric 'phase' = 'warmup' (str) at step 0, not a number: TensorBoard and early stopping skip it",
        "trial 0 returned metric 'note' = 'kept' (str), not a number: it is kept in trials.jsonl and left out of the "
        "results table",
        "trial 0 returned metric 'loss' = null (a NaN or inf becomes null), not a number: it is kept in trials.jsonl "
        "and left out of the results table"]
    assert [record.getMessage() for record in caplog.records] == result.warnings
    assert json.loads((tmp_path / "best.json").read_text())["warnings"] == result.warnings
    assert result.best_metrics == {"accuracy": 1.0, "note": "kept", "loss": None}
    assert "metric_note" not in result.results and "metric_loss" not in result.results
