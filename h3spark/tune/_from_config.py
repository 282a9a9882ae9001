"""Run the ``experiment:`` section of a config: used by the workflow's experiment stage, the CLI and the job."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from h3spark.config import ExperimentModelConfig
from h3spark.errors import ConfigError, TaskFailure, TrialError
from h3spark.storage import resolve_uri
from h3spark.tune._api import run_search
from h3spark.tune._models import TRAINERS
from h3spark.tune._results import ExperimentResult
from h3spark.tune._search import DifferentialEvolution, GridSearch, RandomSearch, Search, SingleTrial

logger = logging.getLogger(__name__)


def search_from_config(section) -> Search:
    if section.search == "grid":
        return GridSearch(section.space)
    if section.search == "random":
        return RandomSearch(section.space, section.samples, section.seed)
    if section.search == "evolution":
        return DifferentialEvolution(section.space, section.generations, section.population, section.seed)
    return SingleTrial(dict(section.space))


def train_fn_from_config(section):
    """The trainer of ``model:`` (sklearn logistic regression by default) or the imported ``train_fn:``."""
    if section.train_fn:
        module_name, _, name = section.train_fn.partition(":")
        try:
            return getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as error:
            raise ConfigError("experiment.train_fn", [f"cannot import {section.train_fn!r}: {error}. Check the module is "
                                                      "importable on the driver and the executors."]) from None
    model = section.model or ExperimentModelConfig()
    spec = {} if model.spec is None else {"spec": model.spec}  # mxnet and torch: the layers, given
    return TRAINERS[model.engine](model.name, model.params, section.holdout_fraction, section.seed, **spec)


def run_experiment(config, workdir: str | Path, spark=None) -> ExperimentResult:
    """Run ``config.experiment`` with the dataset and workdir of ``config``."""
    section = config.experiment
    if section is None:
        raise ConfigError(config.name, ["no experiment: section; add one (see conf/experiment_example.yaml)."])
    experiment_dir = resolve_uri(section.dir or f"experiments/{config.name}", workdir)
    dataset_uri = resolve_uri(section.dataset or config.dataset.uri, workdir)
    stopping = section.early_stopping.model_dump() if section.early_stopping.rule != "none" else None
    kafka = section.kafka.model_dump() if section.kafka else None
    return run_search(search_from_config(section), train_fn_from_config(section), section.metric, section.direction,
                      experiment_dir=experiment_dir, name=config.name, dataset_uri=dataset_uri,
                      parallelism=section.parallelism, timeout_s=section.timeout_s, early_stopping=stopping,
                      spark=spark, kafka=kafka)


def require_success(result: ExperimentResult) -> None:
    """Raise one TrialError naming every failed trial (type, message, traceback tail) when no trial succeeded."""
    if result.best_trial_id is not None:
        return
    failed = result.results[result.results["error"].notna()]
    failures = [TaskFailure.from_traceback("trial", int(row.trial_id), str(row.error), tail_lines=6)
                for row in failed.itertuples()]
    raise TrialError.of(f"no trial of the experiment succeeded ({len(result.results)} trials; see "
                        f"{result.experiment_dir}/results.json)", failures)
