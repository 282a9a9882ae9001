"""The workflow's composition without Spark: which stages a config runs and in what order, the checks made
before anything starts (bad input exits 2), the best trial as the training section, the evaluation's
prediction section, and the commands the summary ends with."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from h3spark.cli._main import main
from h3spark.config import load_config
from h3spark.errors import ConfigError
from h3spark.storage import publishing, write_manifest
from h3spark.workflow import (RunContext, evaluation_config, evaluation_wanted, next_steps, planned_stages, run,
                              with_best_params)
from h3spark.workflow import _run as workflow_run

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "conf" / "quickstart.yaml"
QUICKSTART_STAGES = ["preprocess", "experiment", "training", "evaluate", "actors", "predict"]


def quickstart(*overrides: str):
    return load_config(QUICKSTART, list(overrides))


def test_the_quickstart_runs_every_stage_in_data_flow_order():
    assert planned_stages(quickstart()) == QUICKSTART_STAGES


def test_the_simpler_configs_keep_their_stages():
    assert planned_stages(load_config(ROOT / "conf" / "digits_sklearn.yaml")) == ["ingest", "training"]
    assert planned_stages(load_config(ROOT / "conf" / "experiment_example.yaml")) == ["ingest", "experiment"]
    assert planned_stages(load_config(ROOT / "conf" / "preprocess_example.yaml")) == ["preprocess", "training"]


def test_evaluation_needs_a_neural_model_and_a_test_split():
    assert evaluation_wanted(quickstart())
    no_test = "preprocess.steps=[{kind: split, fractions: {train: 0.8, validation: 0.2}}]"
    assert not evaluation_wanted(quickstart(no_test))
    assert not evaluation_wanted(load_config(ROOT / "conf" / "preprocess_example.yaml"))  # sklearn
    assert "evaluate" not in planned_stages(quickstart(no_test))


def test_a_space_key_training_cannot_take_is_refused_before_anything_starts():
    with pytest.raises(ConfigError) as refused:
        planned_stages(quickstart("experiment.space={C: [0.1, 1.0], lr: [0.1]}"))
    assert refused.value.exit_code == 2
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].startswith("experiment.space.C: training has no option 'C'")


def test_an_experiment_on_another_engine_than_training_is_refused():
    with pytest.raises(ConfigError, match="both need the same engine. Got experiment 'sklearn' and training 'mxnet'"):
        planned_stages(quickstart("experiment.model={engine: sklearn, name: logistic_regression}",
                                  "experiment.space={C: [0.1, 1.0]}"))


def test_predict_without_a_model_to_find_is_refused():
    config = load_config(ROOT / "conf" / "digits_sklearn.yaml", ["predict={output: {uri: datasets/out}}"])
    with pytest.raises(ConfigError, match=r"predict.model: required, but missing"):
        planned_stages(config)


def test_nothing_to_run_names_every_section():
    with pytest.raises(ConfigError, match="nothing to run: add a source:, preprocess:, training:, experiment:, actors: "
                                          "or predict: section"):
        planned_stages(load_config(ROOT / "conf" / "digits_sklearn.yaml", ["source=null", "training=null"]))


def test_the_run_command_exits_2_on_a_bad_section_and_creates_nothing(tmp_path, capsys):
    workdir = tmp_path / "w"
    code = main(["run", str(QUICKSTART), "--workdir", str(workdir), "--set", "experiment.space.momentum_typo=[1, 2]"])
    assert code == 2
    err = capsys.readouterr().err
    assert "experiment.space.momentum_typo: training has no option 'momentum_typo'" in err
    assert "Traceback" not in err
    assert not workdir.exists()


def test_the_best_trial_becomes_the_training_section():
    trained = with_best_params(quickstart(), {"lr": 0.1, "hidden": 96, "batch_size": 32})
    assert trained.training.lr == 0.1 and trained.training.batch_size == 32
    assert trained.training.params == {"hidden": [96], "classes": 10}
    assert trained.training.kvstore == "dist_sync" and trained.training.workers == 2  # the rest as configured
    assert quickstart().training.lr == 0.05  # the caller's config is left as it was


def test_a_best_value_training_refuses_is_a_config_error():
    with pytest.raises(ConfigError, match=r"training.lr: must be greater than 0. Got -1"):
        with_best_params(quickstart(), {"lr": -1})


def test_a_best_layer_option_goes_into_the_spec():
    spec = ("training.model={input_shape: [64], layers: [{type: dense, name: hidden, units: 16, activation: relu}, "
            "{type: dense, name: logits, units: 10}]}")
    config = quickstart(spec, "training.params={}", "experiment.model={engine: mxnet, spec: {input_shape: [64], layers: "
                        "[{type: dense, name: hidden, units: 16}, {type: dense, name: logits, units: 10}]}}",
                        "experiment.space={layers.hidden.units: [8, 32]}")
    trained = with_best_params(config, {"layers.hidden.units": 32})
    assert trained.training.model["layers"][0]["units"] == 32


def _published(uri: str) -> None:
    with publishing(uri) as tmp_uri:
        write_manifest(tmp_uri, {"rows": 0})


def test_evaluation_predicts_the_published_test_split_without_the_pipeline(tmp_path):
    uri = f"file://{tmp_path}/datasets/digits"
    _published(uri)
    section = evaluation_config(quickstart(), uri).predict
    assert section.input.format == "parquet"
    assert section.input.path == f"{uri}/_versions/00000001/split=test"
    assert section.output.uri == f"{uri}_evaluation" and section.output.overwrite
    assert not section.use_pipeline and section.label == "label" and section.features == "features"
    assert section.engine == "numpy"
    assert section.model is None  # the training run's checkpoints (h3spark.serve.model_uri)


def test_run_composes_the_planned_stages_in_order_with_progress_and_stops_at_a_failure(tmp_path, monkeypatch):
    calls, lines = [], []

    def stage(name, fail=False):
        def run_stage(ctx):
            calls.append(name)
            ctx.outputs[name] = True
            if fail:
                raise RuntimeError(f"{name} failed")
        return run_stage

    stages = [(name, wanted, stage(name, fail=name == "actors")) for name, wanted, _ in workflow_run.STAGES]
    monkeypatch.setattr(workflow_run, "STAGES", stages)
    with pytest.raises(RuntimeError, match="actors failed"):
        run(quickstart(), tmp_path / "w", progress=lines.append)
    assert calls == QUICKSTART_STAGES[:5]
    assert [line.split(" (")[0] for line in lines] == [f"h3spark run quickstart: stage {index}/6 {name}"
                                                       for index, name in enumerate(QUICKSTART_STAGES[:5], start=1)]


def test_the_summary_ends_with_what_to_run_next(tmp_path):
    ctx = RunContext.create(quickstart(), tmp_path / "w")
    ctx.outputs.update(experiment=SimpleNamespace(experiment_dir=f"file://{tmp_path}/w/experiments/quickstart"),
                       workers=[{"rank": 0}], actors_home=f"file://{tmp_path}/w/actors/quickstart")
    rows = dict.fromkeys(label for label, _ in next_steps(ctx, "conf/quickstart.yaml"))
    commands = [command for _, command in next_steps(ctx, "conf/quickstart.yaml")]
    assert list(rows) == ["next: tensorboard", "next: web page", "next: report"]
    assert commands[:2] == [f"h3spark tensorboard file://{tmp_path}/w/experiments/quickstart",
                            f"h3spark tensorboard {tmp_path}/w/logs/quickstart"]
    assert commands[2].startswith(f"h3spark web conf/quickstart.yaml --workdir {tmp_path}/w")
    assert commands[3:] == [f"h3spark report file://{tmp_path}/w/experiments/quickstart",
                            f"h3spark report {tmp_path}/w/logs/quickstart",
                            f"h3spark report file://{tmp_path}/w/actors/quickstart"]


def test_a_run_without_those_outputs_suggests_nothing(tmp_path):
    ctx = RunContext.create(load_config(ROOT / "conf" / "digits_sklearn.yaml"), tmp_path / "w")
    assert next_steps(ctx, "conf/digits_sklearn.yaml") == []
