"""Reading run folders: each kind found by its files, its curves and trials; bad folders and damaged
files are usage or data errors that say what is wrong and how to fix it."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from h3spark.errors import DataError, UsageError
from h3spark.report import detect_kind, read_run, runs_below
from h3spark.report._layout import param_axis, parallel_axes
from h3spark.report._runs import Trials


def lines(run, panel):
    return {curve.label: curve for curve in run.curves if curve.panel == panel}


def test_an_experiment_has_each_trials_curves_and_the_trials_table(experiment_dir):
    run = read_run(experiment_dir)
    assert (run.kind, run.name) == ("experiment", "search")
    assert run.trials.metric == "accuracy" and run.trials.direction == "max"
    assert run.trials.params == ["lr", "hidden"]
    rows = {row["label"]: row for row in run.trials.rows}
    assert rows["trial 3"]["status"] == "failed" and rows["trial 3"]["value"] is None
    assert rows["trial 2"]["value"] == pytest.approx(0.7) and rows["trial 2"]["params"] == {"lr": 1.0, "hidden": 8}
    accuracy = lines(run, "accuracy")
    assert sorted(accuracy) == ["trial 0", "trial 1", "trial 2"]  # trial 3 failed before its first report
    assert accuracy["trial 2"].x[:4] == [0.0, 1.0, 2.0, 3.0]
    assert accuracy["trial 2"].y[:4] == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert set(run.panels) == {"accuracy", "loss"}


def test_a_training_log_dir_has_the_engines_scalars(training_dir):
    run = read_run(training_dir)
    assert run.kind == "training" and run.trials is None
    loss = lines(run, "train/loss")["rank 0"]
    assert loss.x == [10.0, 20.0, 30.0, 40.0, 50.0] and loss.y[0] == pytest.approx(0.2)
    assert lines(run, "train/samples_per_s")["rank 0"].y == [1234.0]


def test_each_run_written_into_one_log_dir_is_its_own_line(training_dir, tmp_path):
    from h3spark.train._tensorboard import summary_writer

    folder = str(tmp_path / "twice")
    shutil.copytree(training_dir, folder)
    (path,) = os.listdir(folder)
    os.rename(os.path.join(folder, path), os.path.join(folder, "events.out.tfevents.1700000000.host"))
    writer = summary_writer(folder)  # a second run: its file is named by the time it started, so it sorts last
    writer.add_scalar("train/loss", 3.0, 10)
    writer.close()
    labels = sorted(lines(read_run(folder), "train/loss"))
    assert labels[0] == "rank 0, run of 11-14 22:13:20 UTC" and len(labels) == 2


def test_an_actor_network_has_each_actors_curves_over_time(actors_dir):
    run = read_run(actors_dir)
    assert (run.kind, run.name) == ("actors", "net")
    loss = lines(run, "training loss")["learner"]
    assert loss.x == [0.5, 1.0] and loss.y == [0.9, 0.4] and loss.x_label == "seconds"  # the first had no loss yet
    assert lines(run, "held-out accuracy")["learner"].y == [0.7, 0.9]


def test_a_network_without_a_history_shows_each_actors_last_report(actors_dir):
    os.remove(os.path.join(actors_dir, "reports.jsonl"))
    run = read_run(actors_dir)
    assert lines(run, "step")["learner"].y == [54.0]
    assert "no reports.jsonl" in run.notes[0]


def test_a_gates_run_has_each_sentinels_curves_and_each_gates_delays(gates_dir):
    run = read_run(gates_dir)
    assert (run.kind, run.name) == ("gates", "gates-test ab12cd34")
    assert lines(run, "training loss")["train-1"].x == [1.0, 2.0, 3.0]
    assert lines(run, "held-out accuracy (validation, test)")["val (validation)"].y == pytest.approx([0.3, 0.6])
    delays = lines(run, "gradient delays (count per delay)")
    assert delays["g1"].x == [0.0, 1.0] and delays["g1"].y == [2.0, 16.0]


def test_the_kind_is_found_by_the_files_a_run_writes(experiment_dir, training_dir, actors_dir, gates_dir):
    assert [detect_kind(folder) for folder in (experiment_dir, training_dir, actors_dir, gates_dir)] == [
        "experiment", "training", "actors", "gates"]


def test_a_folder_holding_runs_names_them(actors_dir, gates_dir, tmp_path):
    with pytest.raises(UsageError, match="is not itself a run, but holds runs") as caught:
        read_run(str(tmp_path))
    assert f"{actors_dir} (actors)" in str(caught.value) and f"{gates_dir} (gates)" in str(caught.value)
    assert runs_below(str(tmp_path)) == [(actors_dir, "actors"), (gates_dir, "gates")]


@pytest.mark.parametrize("make, message", [
    (lambda path: path / "missing", "no such directory. Give a directory a run wrote: h3spark experiment CONFIG"),
    (lambda path: path, "is empty: it holds no run to report"),
    (lambda path: (path / "notes.txt").write_text("x") and path, "holds no run h3spark knows (no trials.jsonl"),
])
def test_a_folder_without_a_run_is_a_usage_error_that_says_how_to_make_one(tmp_path, make, message):
    with pytest.raises(UsageError, match="h3spark train CONFIG") as caught:
        read_run(str(make(tmp_path)))
    assert message in str(caught.value)


def copy(source: str, tmp_path) -> str:
    target = str(tmp_path / os.path.basename(source))
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize("name, content, message", [
    ("results.json", "{not json", "results.json is not JSON"),
    ("results.json", '{"a": 1}', "results.json holds a dict, not a list"),
    ("results.json", "[{\"name\": \"x\"}]", "a row has no trial_id"),
    ("results.json", "[{\"trial_id\": 1, \"name\": \"../../elsewhere\"}]", "names its logdir '../../elsewhere'"),
    ("best.json", "[]", "best.json holds a list, not a dict"),
    ("best.json", "{}", "best.json names no metric"),
])
def test_a_damaged_experiment_file_is_a_data_error_naming_it(experiment_dir, tmp_path, name, content, message):
    folder = copy(experiment_dir, tmp_path)
    with open(os.path.join(folder, name), "w") as handle:
        handle.write(content)
    with pytest.raises(DataError, match="damaged") as caught:
        read_run(folder)
    assert message in str(caught.value)


def test_an_experiment_without_results_yet_says_to_resume_it(experiment_dir, tmp_path):
    folder = copy(experiment_dir, tmp_path)
    os.remove(os.path.join(folder, "results.json"))
    with pytest.raises(UsageError, match="no results.json: the experiment is still running .* resumes it"):
        read_run(folder)


def event_file(folder: str) -> str:
    (name,) = [name for name in os.listdir(folder) if "tfevents" in name]
    return os.path.join(folder, name)


def test_an_event_file_with_a_bad_checksum_is_a_data_error(training_dir, tmp_path):
    folder = copy(training_dir, tmp_path)
    path = event_file(folder)
    data = bytearray(open(path, "rb").read())
    data[-6] ^= 0xFF  # inside the last record's data
    open(path, "wb").write(bytes(data))
    with pytest.raises(DataError, match=r"bad data checksum; the file is damaged"):
        read_run(folder)
    open(path, "wb").write(b"this is not an event file at all")
    with pytest.raises(DataError, match="bad length checksum, so the file is not a TensorBoard event file"):
        read_run(folder)


def test_an_event_files_last_record_cut_short_is_ignored(training_dir, tmp_path):
    folder = copy(training_dir, tmp_path)
    path = event_file(folder)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-3])  # a writer killed while writing its last record (samples_per_s)
    run = read_run(folder)
    assert run.panels == ["train/loss"] and len(run.curves[0].x) == 5


def test_a_log_dir_without_scalars_yet_says_when_to_come_back(tmp_path):
    from h3spark.train._tensorboard import summary_writer

    summary_writer(str(tmp_path)).close()
    with pytest.raises(UsageError, match="no scalars in them yet"):
        read_run(str(tmp_path))


def test_damaged_actor_and_gates_files_are_data_errors(actors_dir, gates_dir):
    history = os.path.join(actors_dir, "reports.jsonl")
    with open(history) as handle:
        kept = handle.read().splitlines()
    with open(history, "w") as handle:
        handle.write("\n".join([kept[0], "{torn", kept[1]]) + "\n")
    with pytest.raises(DataError, match="reports.jsonl line 2 is not JSON"):
        read_run(actors_dir)
    with open(history, "w") as handle:
        handle.write("\n".join(kept + ['{"at_s": 9, "act']))  # a torn last line: a killed network
    assert len(read_run(actors_dir).curves[0].x) == 2
    with open(os.path.join(gates_dir, "gates.json"), "w") as handle:
        handle.write("[1, 2")
    with pytest.raises(DataError, match="gates.json is not JSON .* Run h3spark gates CONFIG again"):
        read_run(gates_dir)


def test_hyperparameters_become_axes_numbers_or_categories():
    trials = Trials("accuracy", "max", ["lr", "kind"], [
        {"label": "trial 0", "status": "completed", "value": 0.5, "params": {"lr": 0.001, "kind": "relu"}},
        {"label": "trial 1", "status": "completed", "value": 0.9, "params": {"lr": 0.1, "kind": "tanh"}},
        {"label": "trial 2", "status": "failed", "value": None, "params": {"lr": 0.01, "kind": "relu"}}])
    lr, kind = param_axis(trials, "lr"), param_axis(trials, "kind")
    assert lr.log and lr.ticks == [] and lr.positions == [0.001, 0.1, 0.01]
    assert kind.ticks == [(0.0, "relu"), (1.0, "tanh")] and kind.positions == [0.0, 1.0, 0.0]
    view = parallel_axes(trials)
    assert view.names == ["lr", "kind", "accuracy"] and view.labels == ["trial 0", "trial 1"]
    assert view.lines == [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    assert view.ranges == [("0.001", "0.1"), ("relu", "tanh"), ("0.5", "0.9")]


def test_the_history_the_network_writes_holds_what_the_report_reads(actors_dir):
    with open(os.path.join(actors_dir, "reports.jsonl")) as handle:
        first = json.loads(handle.readline())
    assert first == {"at_s": 0.0, "actor": "learner", "state": "running", "step": 0, "handled": 0, "loss": None,
                     "rows_trained": 0, "rows_predicted": None, "evaluated": None, "predicted": None}


def test_a_file_uri_is_read_and_a_remote_one_is_refused_with_the_copy_to_make(training_dir):
    assert read_run(f"file://{training_dir}").folder == training_dir
    with pytest.raises(UsageError, match=r"reads a local folder; copy the run here first, e.g. hdfs dfs -get "
                                         r"hdfs://nn:8020/w/logs/x /tmp/run"):
        read_run("hdfs://nn:8020/w/logs/x")


def test_json_of_an_unexpected_shape_is_a_data_error_not_a_traceback(gates_dir, actors_dir):
    with open(os.path.join(gates_dir, "gates.json"), "w") as handle:
        json.dump({"epochs": {"train-1": ["not a record"]}}, handle)
    with pytest.raises(DataError, match=r"its gates files hold records of an unexpected shape \(AttributeError"):
        read_run(gates_dir)
    with open(os.path.join(actors_dir, "reports.jsonl"), "w") as handle:
        handle.write('{"actor": "learner", "at_s": 1, "evaluated": [0.9]}\n')
    with pytest.raises(DataError, match="its actors files hold records of an unexpected shape"):
        read_run(actors_dir)


def test_an_actors_panels_come_in_a_fixed_order(actors_dir):
    assert read_run(actors_dir).panels == ["training loss", "held-out accuracy", "step", "messages handled"]
