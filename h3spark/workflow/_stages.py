"""The foundation's stages: ingest a source into a published dataset, train on it."""

from __future__ import annotations

import logging

from h3spark.ingest import checked_rows, manifest_columns, read_source
from h3spark.storage import describe_splits, publishing, read_manifest, resolve_published, resolve_uri, write_manifest
from h3spark.workflow._context import RunContext

logger = logging.getLogger(__name__)


def ingest_stage(ctx: RunContext) -> None:
    """Read ``source:`` with Spark and publish it as Parquet at ``dataset.uri``."""
    config = ctx.config
    uri = resolve_uri(config.dataset.uri, ctx.workdir)
    frame = read_source(ctx.spark, config.source, str(ctx.workdir))
    if config.dataset.partitions:
        frame = frame.repartition(config.dataset.partitions)
    source = config.source
    frame = checked_rows(frame.cache(), f"source {source.path or source.topic or source.name}")
    rows = frame.count()
    with publishing(uri, overwrite=config.dataset.overwrite) as tmp_uri:
        frame.write.parquet(tmp_uri)
        write_manifest(tmp_uri, {
            "rows": rows,
            "schema": frame.schema.jsonValue(),
            **manifest_columns(frame.schema),  # only columns the source has
            "source": config.source.model_dump(exclude_none=True),
            "splits": describe_splits(tmp_uri),
        })
    frame.unpersist()
    ctx.outputs["dataset_uri"] = uri
    ctx.report("dataset", f"{uri} ({rows} rows)")


def source_label(source) -> str:
    """``FORMAT WHERE`` of a ``source:`` section, e.g. ``bundled digits``."""
    where = source.path or source.topic or source.name or ((source.jdbc.table or "a query") if source.jdbc else "")
    return f"{source.format} {where}"


def training_stage(ctx: RunContext) -> None:
    """Train the configured model on the published dataset."""
    config = _with_best_trial(ctx)
    training = config.training
    uri = ctx.outputs.get("dataset_uri") or resolve_uri(config.dataset.uri, ctx.workdir)
    require_training_columns(uri)
    if training.engine != "sklearn":
        from h3spark.train import train_from_config

        summary, ctx.outputs["workers"] = train_from_config(config, ctx.workdir, spark=ctx.spark, dataset_uri=uri)
        ctx.summary.extend(summary)
        return
    uri = resolve_published(uri)  # one version for the manifest and every split read
    manifest = read_manifest(uri)
    from h3spark.train.engines.sklearn import train_on_dataset

    _, metrics = train_on_dataset(uri, manifest["splits"], training.model, training.params,
                                  training.holdout_fraction, training.seed)
    logger.info("trained model=%s rows=%d accuracy=%.4f", training.model, manifest["rows"], metrics["accuracy"])
    ctx.outputs["metrics"] = metrics
    ctx.report("model", f"sklearn {training.model}")
    held_out = f"the {metrics['evaluated_on']} split" if "evaluated_on" in metrics else "held-out rows"
    ctx.report("accuracy", f"{metrics['accuracy']:.4f} on {metrics['test_rows']} {held_out}")


def _with_best_trial(ctx: RunContext):
    """The config to train: after an experiment, its best trial's hyperparameters in ``training:``."""
    experiment = ctx.outputs.get("experiment")
    if experiment is None:
        return ctx.config
    from h3spark.workflow._best import with_best_params

    ctx.report("trained", f"the best trial's {experiment.best_params} (trial {experiment.best_trial_id})")
    return with_best_params(ctx.config, experiment.best_params)


def require_training_columns(uri: str) -> None:
    """The features and label columns the dataset's manifest names exist: a DataError on the driver,
    before any worker starts, when it names none or its files lack them."""
    from h3spark.feed import DataIterator

    DataIterator(uri, batch_size=1, prefetch=0, read_threads=1).dataset_.require_label()
