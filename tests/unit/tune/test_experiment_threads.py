"""Experiments on the in-process thread executor (no JVM): API checks, outputs, HParams, models, config."""

import json
import os
import threading
import time

import pytest

from h3spark import tune
from h3spark.config import H3SparkConfig, load_config, validate
from h3spark.errors import ConfigError


def _fn(params, ctx):
    ctx.report({"accuracy": params["x"] / 2, "loss": 1.0})
    ctx.report({"accuracy": params["x"] / 1.5, "loss": 0.5})
    return {"accuracy": float(params["x"]), "note": "strings are kept out of the table"}


def test_search_writes_table_log_plot_best_and_logdirs(tmp_path):
    result = tune.grid_search(_fn, {"x": [1, 3, 2]}, executor="threads", experiment_dir=str(tmp_path))
    assert result.best_params == {"x": 3} and result.best_trial_id == 1 and result.best_metrics["accuracy"] == 3.0
    assert result.best_logdir.endswith(tune.trial_dirname(1, {"x": 3}))
    frame = result.results
    assert list(frame.columns[:6]) == ["trial_id", "name", "status", "generation", "param_x", "metric_accuracy"]
    assert "metric_note" not in frame
    board = result.leaderboard().splitlines()
    assert board[1].split()[:3] == ["1", "1", "3"] and board[-1] == "trials: 3 completed"
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["best"]["trial_id"] == 1 and best["direction"] == "max"
    assert (tmp_path / "metric_vs_params.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(json.loads((tmp_path / "results.json").read_text())) == 3


def test_hparams_are_readable_by_tensorboard_while_the_trial_runs(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    release = tmp_path / "release"

    def waits(params, ctx):
        while not release.exists():
            time.sleep(0.02)
        ctx.report({"accuracy": 0.5}, step=0)
        return {"accuracy": 0.75}

    runner = threading.Thread(target=tune.launch, args=(waits, {"lr": 0.01, "act": "relu"}),
                              kwargs={"executor": "threads", "experiment_dir": str(tmp_path / "exp")})
    runner.start()
    logdir = tmp_path / "exp" / "trials" / tune.trial_dirname(0, {"lr": 0.01, "act": "relu"})
    try:
        deadline, tags = time.monotonic() + 10, {}
        while metadata.SESSION_START_INFO_TAG not in tags and time.monotonic() < deadline:
            time.sleep(0.02)
            accumulator = EventAccumulator(str(logdir)).Reload() if logdir.exists() else None
            tags = accumulator.summary_metadata if accumulator else {}
        content = accumulator.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
        start = metadata.parse_session_start_info_plugin_data(content)
        assert start.hparams["lr"].number_value == 0.01 and start.hparams["act"].string_value == "relu"
        assert runner.is_alive()  # read before the trial ended
    finally:
        release.touch()
        runner.join(10)
    root = EventAccumulator(str(tmp_path / "exp")).Reload()
    experiment = metadata.parse_experiment_plugin_data(root.SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content)
    assert [info.name for info in experiment.hparam_infos] == ["lr", "act"]
    assert [info.name.tag for info in experiment.metric_infos] == ["accuracy"]
    finished = EventAccumulator(str(logdir)).Reload()
    assert [event.value for event in finished.Scalars("accuracy")] == [0.5, 0.75]
    end = metadata.parse_session_end_info_plugin_data(finished.SummaryMetadata(metadata.SESSION_END_INFO_TAG).plugin_data.content)
    assert end.status == 1  # STATUS_SUCCESS


def test_bad_arguments_are_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as error:
        tune.grid_search("not callable", {"x": [1]}, parallelism=0, timeout_s=-1, executor="ray", experiment_dir=str(tmp_path))
    text = str(error.value)
    for expected in ("The 'train_fn' parameter must be a callable", "The 'parallelism' parameter must be an int >= 1 or None. Got 0",
                     "The 'timeout_s' parameter must be a number > 0 or None. Got -1", "The 'executor' parameter must be 'spark' or 'threads'"):
        assert expected in text
    with pytest.raises(ConfigError, match="The 'direction' parameter must be 'max' or 'min'. Got 'up' instead."):
        tune.grid_search(_fn, {"x": [1]}, direction="up", executor="threads", experiment_dir=str(tmp_path))
    with pytest.raises(TypeError):
        tune.grid_search(_fn, {"x": [1]}, paralelism=2)


def test_a_missing_metric_fails_the_trial_with_a_hint(tmp_path):
    result = tune.launch(lambda params, ctx: {"acc": 1.0}, {}, executor="threads", experiment_dir=str(tmp_path))
    row = result.results.iloc[0]
    assert row["status"] == "failed" and "returned no 'accuracy' metric; it returned ['acc']" in row["error"]
    assert result.best_params is None


def test_a_crashing_trial_process_is_recorded(tmp_path):
    result = tune.launch(lambda params, ctx: os._exit(3), {}, executor="threads", experiment_dir=str(tmp_path))
    assert "exited with code 3" in result.results.iloc[0]["error"]


def test_saved_sklearn_model_is_copied_to_best_model(tmp_path):
    from sklearn.linear_model import LogisticRegression

    def fit(params, ctx):
        model = LogisticRegression(C=params["C"]).fit([[0.0], [1.0]], [0, 1])
        ctx.save_model(model)
        return {"accuracy": params["C"]}

    result = tune.grid_search(fit, {"C": [0.5, 2.0]}, executor="threads", experiment_dir=str(tmp_path))
    assert result.results["model"].tolist() == ["model/model.joblib"] * 2
    import joblib

    assert joblib.load(tmp_path / "best_model" / "model.joblib").C == 2.0
    with pytest.raises(ConfigError, match="save_model saves h3spark models, scikit-learn estimators, Gluon blocks and torch modules. Got object"):
        from h3spark.tune._models import save_model

        save_model(object(), str(tmp_path / "m"))


def test_experiment_section_is_validated_with_lines(tmp_path):
    config = validate({"name": "e", "experiment": {"search": "grid", "space": {"C": [1, 2]}}}, H3SparkConfig, "x.yaml")
    assert config.experiment.direction == "max" and config.experiment.early_stopping.rule == "none"
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("name: e\nexperiment:\n  search: random\n  space:\n    lr: {type: loguniform, low: 0, high: 1}\n  serach: grid\n")
    with pytest.raises(ConfigError) as error:
        load_config(config_file)
    text = str(error.value)
    assert "line 6  experiment.serach: unknown key. Did you mean 'search'?" in text
    assert "The 'low' parameter of LogUniform must be a number > 0. Got 0 instead." in text
    config_file.write_text("name: e\nexperiment:\n  search: evolution\n  space: {x: [1, 2]}\n  population: 5\n")
    with pytest.raises(ConfigError, match="search 'evolution' needs generations; add experiment.generations"):
        load_config(config_file)


def test_evolution_extends_with_more_generations_without_rerunning(tmp_path):
    def fn(params, ctx):
        return {"accuracy": -((params["x"] - 0.7) ** 2)}

    space = {"x": tune.Float(0, 1)}
    first = tune.differential_evolution(fn, space, generations=2, population=4, seed=1, executor="threads",
                                        experiment_dir=str(tmp_path))
    more = tune.differential_evolution(fn, space, generations=3, population=4, seed=1, executor="threads",
                                       experiment_dir=str(tmp_path))
    events = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert sorted(event["trial_id"] for event in events if event["event"] == "started") == list(range(12))
    assert more.results["generation"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert more.results["param_x"].tolist()[:8] == first.results["param_x"].tolist()
    assert more.best_metrics["accuracy"] >= first.best_metrics["accuracy"]
