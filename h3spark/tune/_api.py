"""The public searches: grid, random, differential evolution, and a single launch.

    >>> def train_fn(params, ctx):
    ...     ctx.report({"accuracy": 0.5}, step=0)
    ...     return {"accuracy": 0.9}
    >>> result = grid_search(train_fn, {"lr": [0.01, 0.1], "hidden": [64, 128]}, metric="accuracy", direction="max")
    >>> result.best_params, result.results.head()

Every search takes the same options: ``experiment_dir`` (file:// or hdfs://; default
``./h3spark-work/experiments/NAME``), ``name``, ``dataset_uri``, ``parallelism`` (default:
the available task slots), ``timeout_s`` per trial, ``early_stopping`` ('median', a dict
of MedianStoppingRule options with ``rule``, or a StoppingRule), ``spark`` (a session;
default: the active one), ``executor`` ('spark' or 'threads') and ``kafka``
({"bootstrap_servers": ..., "topic": ...}) for the metric channel.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from h3spark.config import DEFAULT_WORKDIR
from h3spark.errors import ConfigError
from h3spark.storage import resolve_uri
from h3spark.tune._executors import SparkExecutor, ThreadExecutor
from h3spark.tune._experiment import Experiment, check_metric, prepare_dir
from h3spark.tune._results import ExperimentResult
from h3spark.tune._search import DifferentialEvolution, GridSearch, RandomSearch, Search, SingleTrial
from h3spark.tune._stopping import StoppingRule, stopping_rule

logger = logging.getLogger(__name__)

TrainFn = Callable[[dict, Any], dict]
DEFAULT_EXPERIMENTS = f"{DEFAULT_WORKDIR}/experiments"


def grid_search(train_fn: TrainFn, space: dict, *, metric: str = "accuracy", direction: str = "max", **options) -> ExperimentResult:
    """Every combination of the listed values (lists, Choice, Int)."""
    return run_search(GridSearch(space), train_fn, metric, direction, **options)


def random_search(train_fn: TrainFn, space: dict, *, samples: int, seed: int = 0, metric: str = "accuracy",
                  direction: str = "max", **options) -> ExperimentResult:
    """``samples`` draws from Int, Float, LogUniform and Choice domains (lists are choices)."""
    return run_search(RandomSearch(space, samples, seed), train_fn, metric, direction, **options)


def differential_evolution(train_fn: TrainFn, space: dict, *, generations: int, population: int, seed: int = 0,
                           metric: str = "accuracy", direction: str = "max", mutation: float = 0.8,
                           crossover: float = 0.9, **options) -> ExperimentResult:
    """``generations`` generations of ``population`` trials each (DE/rand/1/bin)."""
    search = DifferentialEvolution(space, generations, population, seed, mutation, crossover)
    return run_search(search, train_fn, metric, direction, **options)


def launch(train_fn: TrainFn, params: dict | None = None, *, metric: str = "accuracy", direction: str = "max",
           **options) -> ExperimentResult:
    """One trial with fixed params, with the same logdir, results and failure handling as a search."""
    return run_search(SingleTrial(params or {}), train_fn, metric, direction, **options)


def run_search(search: Search, train_fn: TrainFn, metric: str, direction: str, *, experiment_dir: str | None = None,
               name: str | None = None, dataset_uri: str | None = None, parallelism: int | None = None,
               timeout_s: float | None = None, early_stopping=None, spark=None, executor: str = "spark",
               kafka: dict | None = None) -> ExperimentResult:
    """Run any :class:`Search`; the public searches call this."""
    _check_options(train_fn, parallelism, timeout_s, executor)
    check_metric(metric, direction)
    name = name or getattr(train_fn, "__name__", "experiment").strip("<>") or "experiment"
    experiment_dir = prepare_dir(resolve_uri(experiment_dir or f"{DEFAULT_EXPERIMENTS}/{name}"))
    experiment = Experiment(search, train_fn, metric=metric, direction=direction, experiment_dir=experiment_dir,
                            executor=_executor(executor, spark), parallelism=parallelism, timeout_s=timeout_s,
                            stopping=_stopping(early_stopping), dataset_uri=dataset_uri, kafka=_kafka_settings(kafka))
    return experiment.run()


def _check_options(train_fn, parallelism, timeout_s, executor) -> None:
    problems = []
    if not callable(train_fn):
        problems.append(f"The 'train_fn' parameter must be a callable train_fn(params, ctx). Got {train_fn!r} instead.")
    if parallelism is not None and (isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1):
        problems.append(f"The 'parallelism' parameter must be an int >= 1 or None. Got {parallelism!r} instead.")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0):
        problems.append(f"The 'timeout_s' parameter must be a number > 0 or None. Got {timeout_s!r} instead.")
    if executor not in ("spark", "threads"):
        problems.append(f"The 'executor' parameter must be 'spark' or 'threads'. Got {executor!r} instead.")
    if problems:
        raise ConfigError("experiment", problems)


def _kafka_settings(kafka: dict | None) -> dict | None:
    if kafka is None:
        return None
    if not isinstance(kafka, dict) or not kafka.get("bootstrap_servers"):
        raise ConfigError("experiment.kafka", [f"The 'kafka' parameter must be a dict with 'bootstrap_servers' (and an "
                                               f"optional 'topic'). Got {kafka!r} instead."])
    return {"topic": "h3spark-experiment-metrics", **kafka}


def _executor(kind: str, spark):
    if kind == "threads":
        return ThreadExecutor()
    if spark is None:
        from h3spark.spark import get_spark

        spark = get_spark()
    return SparkExecutor(spark)


def _stopping(early_stopping) -> StoppingRule:
    if early_stopping is None or isinstance(early_stopping, StoppingRule):
        return early_stopping or StoppingRule()
    if isinstance(early_stopping, str):
        return stopping_rule(early_stopping)
    if isinstance(early_stopping, dict):
        options = dict(early_stopping)
        return stopping_rule(options.pop("rule", "median"), **options)
    raise ConfigError("experiment.early_stopping", [
        f"The 'early_stopping' parameter must be 'median', a dict or a StoppingRule. Got {early_stopping!r} instead."])
