"""``h3spark run CONFIG``: run every stage whose section the config has, in data-flow order.

    source -> ingest | preprocess -> experiment -> training -> evaluate -> actors -> predict

Each stage calls its package's public function (h3spark.preprocess.preprocess, h3spark.tune.run_experiment,
h3spark.train.train_from_config, h3spark.serve.predict, h3spark.actors.run_network) with the one SparkSession
of the run. With both experiment: and training:, training trains the best trial's hyperparameters
(h3spark/workflow/_best.py); a neural model trained on a dataset with a test split is scored on it
(h3spark/workflow/_evaluate.py). Every section is checked before the first stage starts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from h3spark.config import H3SparkConfig
from h3spark.errors import ConfigError
from h3spark.workflow._actors import actors_stage
from h3spark.workflow._best import best_params_problems
from h3spark.workflow._context import RunContext
from h3spark.workflow._evaluate import evaluate_stage, evaluation_wanted
from h3spark.workflow._experiment import experiment_stage
from h3spark.workflow._predict import predict_stage
from h3spark.workflow._preprocess import preprocess_stage
from h3spark.workflow._stages import ingest_stage, training_stage

# (name, is this stage configured?, stage). Later stages read earlier stages' ctx.outputs.
STAGES: list[tuple[str, Callable[[H3SparkConfig], bool], Callable[[RunContext], None]]] = [
    ("ingest", lambda config: config.source is not None and config.preprocess is None, ingest_stage),
    ("preprocess", lambda config: config.preprocess is not None, preprocess_stage),
    ("experiment", lambda config: config.experiment is not None, experiment_stage),
    ("training", lambda config: config.training is not None, training_stage),
    ("evaluate", evaluation_wanted, evaluate_stage),
    ("actors", lambda config: config.actors is not None, actors_stage),
    ("predict", lambda config: config.predict is not None, predict_stage),
]


def planned_stages(config: H3SparkConfig) -> list[str]:
    """The names of the stages ``run`` would run for ``config``, in order; a ConfigError (exit 2) when there
    is nothing to run or a section cannot work with the others (checked before anything starts).

    >>> planned_stages(load_config("conf/quickstart.yaml"))
    ['preprocess', 'experiment', 'training', 'evaluate', 'actors', 'predict']
    """
    names = [name for name, wanted, _ in STAGES if wanted(config)]
    if not names:
        raise ConfigError(config.name, ["nothing to run: add a source:, preprocess:, training:, experiment:, actors: "
                                        "or predict: section."])
    problems = best_params_problems(config)
    if config.predict is not None:
        problems += _predict_problems(config)
    if problems:
        raise ConfigError(config.name, problems)
    return names


def _predict_problems(config: H3SparkConfig) -> list[str]:
    from h3spark.serve import model_uri

    problems = []
    if config.predict.input is None and config.source is None:
        problems.append("predict.input: required, but missing (and there is no source: to fall back on). Add "
                        "predict.input: {format: ..., path: ...}.")
    try:
        model_uri(config)
    except ConfigError as error:
        problems += error.problems
    return problems


def run(config: H3SparkConfig, workdir: str | Path | None = None, stop_spark: bool = True,
        progress: Callable[[str], None] | None = None) -> RunContext:
    """Run the configured stages; return the context holding outputs and the summary. ``progress`` gets a
    line as each stage starts and the stages' own progress (default: the log, at INFO).

    >>> ctx = run(load_config("conf/quickstart.yaml"), "/tmp/qs", progress=print)
    >>> ctx.outputs["evaluation"].accuracy
    """
    names = planned_stages(config)
    stages = [(name, stage) for name, _, stage in STAGES if name in names]
    ctx = RunContext.create(config, workdir, progress)
    try:
        for index, (name, stage) in enumerate(stages, start=1):
            ctx.progress(f"h3spark run {config.name}: stage {index}/{len(stages)} {name} "
                         f"({time.monotonic() - ctx.started_s:.0f} s)")
            started = time.monotonic()
            stage(ctx)
            ctx.report(f"{name} time", f"{time.monotonic() - started:.1f} s")
    finally:
        if ctx.has_spark:
            ctx.report("spark master", ctx.spark.sparkContext.master)
            if stop_spark:
                ctx.spark.stop()
    ctx.report("total time", f"{time.monotonic() - ctx.started_s:.1f} s")
    return ctx
