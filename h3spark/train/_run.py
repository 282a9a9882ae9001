"""``train_from_config``: what ``h3spark train CONFIG`` and ``jobs/train.py`` run."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from h3spark.errors import UsageError
from h3spark.spark import SparkStart, start_spark
from h3spark.storage import join_uri, require_published, resolve_uri
from h3spark.train._api import distributed
from h3spark.train._checkpoint import plan_run
from h3spark.train._labels import check_training_labels
from h3spark.train._model import check_training_model
from h3spark.train._task import WORKER_PYTHON_ENV

logger = logging.getLogger(__name__)

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS")
_MXNET_ENGINE = {"MXNET_ENGINE_TYPE": "NaiveEngine"}
_ENGINE_MODULES = {"mxnet": "h3spark.train.engines.mxnet", "torch": "h3spark.train.engines.torch"}


def worker_settings(config, workdir: Path, resume: bool, dataset_uri: str | None = None) -> dict:
    """The JSON settings every worker gets: the training section plus resolved URIs, and the run
    it writes (``run``; ``resume_from``: the checkpoint it starts from, see ``plan_run``)."""
    training = config.training
    settings = training.model_dump()
    settings["dataset_uri"] = dataset_uri or resolve_uri(config.dataset.uri, str(workdir))
    settings["checkpoint_uri"] = resolve_uri(training.checkpoint_uri or join_uri("checkpoints", config.name), str(workdir))
    settings["log_dir"] = str(Path(training.log_dir or workdir / "logs" / config.name).expanduser().resolve())
    settings["resume"] = resume
    plan = plan_run(settings["checkpoint_uri"], settings, resume)
    logger.info("%s checkpoints=%s", plan.describe(), settings["checkpoint_uri"])
    settings.update(run=plan.run, resume_from=plan.resume_from, resume_step=plan.step)
    return settings


def train_from_config(config, workdir: str | Path, resume: bool = False, spark=None, env: dict | None = None,
                      echo: bool = True, dataset_uri: str | None = None) -> tuple[list[tuple[str, str]], list]:
    """Train the config's distributed engine; return (summary rows, every worker's result).

    ``spark``: a session, a ``start_spark`` handle, or None (launcher spark: the process's session,
    else one from ``config.spark``, whose JVM starts while the driver checks the dataset)."""
    training = config.training
    if training is None or training.engine not in _ENGINE_MODULES:
        raise UsageError("h3spark train runs engine mxnet or torch; add a training: section with engine: mxnet or torch "
                         "(engine sklearn runs with 'h3spark run CONFIG').")
    if training.launcher == "spark" and spark is None:  # (a Spark Connect session only ever runs launches)
        spark = start_spark(config.spark, launch_only=config.spark.remote is not None)
    # the driver's checks come first: a refused job reserves no run (worker_settings does, see plan_run)
    dataset_uri = dataset_uri or resolve_uri(config.dataset.uri, str(workdir))
    require_published(dataset_uri)
    check_training_labels({**training.model_dump(), "dataset_uri": dataset_uri})
    check_training_model({**training.model_dump(), "dataset_uri": dataset_uri})  # options and spec fit the contract, data
    settings = worker_settings(config, Path(workdir), resume, dataset_uri)
    if isinstance(spark, SparkStart):
        spark = spark.result()
    # One math thread per process: reproducible sums (resume == uninterrupted) and no oversubscription
    # when several roles share a host's cores. MXNet's synchronous engine: with its threaded engine,
    # dist_sync training on busy cores sometimes ends with wrong, blown-up weights (MXNet 1.9.1;
    # see docs/training.md). A value set in the environment wins.
    defaults = {**{key: "1" for key in _THREAD_VARIABLES}, **(_MXNET_ENGINE if training.engine == "mxnet" else {})}
    env = {**{key: value for key, value in defaults.items() if key not in os.environ}, **(env or {})}
    if WORKER_PYTHON_ENV in os.environ:  # the driver's choice reaches the tasks, whose environment is Spark's
        env.setdefault(WORKER_PYTHON_ENV, os.environ[WORKER_PYTHON_ENV])
    results = _launch(training, settings, spark, env, echo)
    return _summary(training, settings, results), results


def _launch(training, settings: dict, spark, env, echo: bool) -> list:
    # Only the function's name travels: the driver needs neither torch nor mxnet, and the workers
    # (H3SPARK_WORKER_PYTHON may name another interpreter for them) import the engine.
    train_fn = f"{_ENGINE_MODULES[training.engine]}:train_worker"
    if training.engine == "torch":
        return distributed(train_fn, num_workers=training.workers, framework="torch", args=(settings,),
                           launcher=training.launcher, spark=spark, env=env, echo=echo)
    return distributed(train_fn, num_workers=training.workers, num_servers=training.servers, kvstore=training.kvstore,
                       args=(settings,), launcher=training.launcher, spark=spark, env=env, echo=echo)


def _summary(training, settings: dict, results: list) -> list[tuple[str, str]]:
    lead = next((r for r in results if r.get("rank") == 0), results[0])
    total_rate = sum(r["samples_per_s"] for r in results)
    if training.engine == "torch":
        setup = f"torch {'nccl' if training.gpus else 'gloo'} workers={training.workers} gpus={training.gpus}"
    else:
        setup = f"mxnet kvstore={training.kvstore} workers={training.workers} servers={training.servers}"
    run = f"{settings['run']}, " + (f"resumed from step {settings['resume_step']}" if settings["resume_from"] else "from step 0")
    rows = [("engine", setup),
            ("run", run),
            ("steps", str(lead["steps"])),
            ("throughput", f"{total_rate:,.0f} samples/s ({len(results)} workers)"),
            ("final loss", f"{lead['loss']:.4f}")]
    if lead.get("val_accuracy") is not None:
        rows.append(("validation accuracy", f"{lead['val_accuracy']:.4f}"))
    rows.append(("checkpoint", str(lead.get("checkpoint"))))
    rows.append(("tensorboard", settings["log_dir"]))
    return rows
