"""Batch inference on Spark: what ``h3spark predict`` and ``jobs/predict.py`` run.

    >>> result = predict(load_config("conf/predict_example.yaml"), workdir="/tmp/work")
    >>> result.rows_out, result.accuracy

The input (``predict.input``, else ``source:``: files, a Parquet dataset, a JDBC table or a Kafka
topic) reaches the tasks as Arrow batches (``mapInArrow``). Each task loads the model once (its
bytes travel in a broadcast: no task needs the model's path) and the fitted pipeline (JSON), runs
both on every batch and streams its predictions into its own Parquet part file. A dataset output
is then published atomically (``h3spark.storage.publishing``), with a quarantine dataset of the
rows the pipeline refused; a table output is written from those files by ``write_jdbc`` (all rows
or none) and the files are deleted.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa

from h3spark.config import H3SparkConfig, PredictConfig
from h3spark.errors import ConfigError, DataError, JobFailedError
from h3spark.preprocess import Pipeline
from h3spark.serve._batch import BatchPredictor, for_prediction
from h3spark.serve._model import ModelFile, ServedModel, find_model
from h3spark.serve._parts import PartWriter
from h3spark.serve._progress import Progress, watched
from h3spark.spark import carrying_errors, spark_errors
from h3spark.storage import (describe_splits, filesystem_for, join_uri, publishing, read_manifest, resolve_uri,
                             write_manifest, write_jdbc)

logger = logging.getLogger(__name__)

TASK = "a prediction task"
SUMMARY_SCHEMA = "partition long, rows_in long, rows_out long, rows_bad long, labelled long, correct long, reasons string"
_BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"


@dataclass
class PredictResult:
    """What a prediction run produced (the end summary)."""

    output: str
    quarantine_uri: str | None
    model: str
    engine: str
    rows_in: int
    rows_out: int
    rows_quarantined: int
    reasons: dict[str, int]
    labelled: int
    correct: int
    seconds: float
    tasks: int = 0
    classes: list[int] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    def summary(self) -> list[tuple[str, str]]:
        rate = self.rows_in / self.seconds if self.seconds > 0 else 0.0
        lines = [("model", f"{self.model} ({self.engine})"), ("rows in", str(self.rows_in)),
                 ("rows predicted", str(self.rows_out)), ("rows quarantined", str(self.rows_quarantined)),
                 ("output", self.output), ("time", f"{self.seconds:.1f} s ({rate:,.0f} rows/s, {self.tasks} tasks)")]
        if self.accuracy is not None:
            lines.append(("accuracy", f"{self.accuracy:.4f} on {self.labelled} labelled rows"))
        if self.quarantine_uri:
            lines.append(("quarantine", self.quarantine_uri))
        top = sorted(self.reasons.items(), key=lambda item: -item[1])[:3]
        return lines + [("bad rows", f"{count} x {reason}") for reason, count in top]


def predict(config: H3SparkConfig, workdir: str | None = None, spark=None, progress: Progress | None = None) -> PredictResult:
    """Run the config's ``predict:`` section on Spark; return its counts (see the module docstring)."""
    section = _section(config)
    model_file = find_model(model_uri(config), workdir, section.engine)
    model = model_file.load()  # here first: a model that cannot be read fails before Spark starts
    pipeline, pipeline_uri = _pipeline(config, section, workdir, model)
    from h3spark.ingest import read_source
    from h3spark.spark import get_spark

    spark = spark or get_spark(config.spark)
    frame = read_source(spark, section.input or config.source, workdir)
    if section.partitions:
        frame = frame.repartition(section.partitions)
    adapted = for_prediction(pipeline, frame.columns, section.keep) if pipeline is not None else None
    logger.info("predicting with model=%s engine=%s classes=%d pipeline=%s", model_file.uri, model.engine,
                len(model.classes), "yes" if adapted is not None else "no")
    started = time.monotonic()
    label = pipeline.label if pipeline is not None else section.label
    run = _Run(spark, frame, model_file, adapted, pipeline_uri, label, section, config.storage.model_dump(), progress)
    if section.output.uri is not None:
        output, quarantine_uri, tasks = _to_dataset(run, config, workdir, model)
    else:
        output, quarantine_uri, tasks = _to_table(run, section, workdir)
    counts = _counts(tasks)
    return PredictResult(output, quarantine_uri, model_file.uri, model.engine, counts["in"], counts["out"], counts["bad"],
                         counts["reasons"], counts["labelled"], counts["correct"], time.monotonic() - started,
                         len(tasks), [int(label) for label in model.classes])


def _section(config: H3SparkConfig) -> PredictConfig:
    problems = []
    if config.predict is None:
        problems.append("predict: required, but missing. Add a predict: section with model and output.")
    elif config.predict.input is None and config.source is None:
        problems.append("predict.input: required, but missing (and there is no source: to fall back on). "
                        "Add predict.input: {format: ..., path: ...}.")
    if problems:
        raise ConfigError(config.name, problems)
    return config.predict


def model_uri(config: H3SparkConfig) -> str:
    """``predict.model``, else the checkpoints of the config's mxnet or torch training run."""
    if config.predict is not None and config.predict.model is not None:
        return config.predict.model
    training = config.training
    if training is not None and training.engine in ("mxnet", "torch"):
        return training.checkpoint_uri or join_uri("checkpoints", config.name)
    raise ConfigError(config.name, ["predict.model: required, but missing. Give a model file, a training run's "
                                    "checkpoints or an experiment's folder."])


def _pipeline(config: H3SparkConfig, section: PredictConfig, workdir, model: ServedModel) -> tuple[Pipeline | None, str | None]:
    """The fitted pipeline to run first (see PredictConfig.pipeline) and its dataset; its output must fit the model."""
    where = section.pipeline or (config.dataset.uri if config.preprocess is not None else None)
    if not section.use_pipeline or where is None:
        return None, None
    uri = resolve_uri(where, workdir)
    manifest = read_manifest(uri)
    if not manifest.get("pipeline"):
        raise DataError(f"{uri} holds no fitted pipeline (its manifest has no 'pipeline'); give predict.pipeline the "
                        "dataset the model was trained on, or set predict.use_pipeline: false.")
    pipeline = Pipeline.from_dict(manifest["pipeline"])
    shape = (manifest.get("columns") or {}).get(pipeline.features, {}).get("shape")
    if shape and int(shape[0]) != model.features:
        raise DataError(f"the pipeline of {uri} makes {pipeline.features!r} vectors of {shape[0]} values, but the model "
                        f"takes rows of shape {list(model.input_shape)} ({model.features} values). Give the model "
                        "trained on that dataset, or that model's dataset as predict.pipeline.")
    return pipeline, uri


@dataclass
class _Run:
    """One prediction job: the frame, what its tasks need, and the job's progress callback."""

    spark: object
    frame: object
    model_file: ModelFile
    pipeline: Pipeline | None
    pipeline_uri: str | None
    label: str | None  # the true labels' column (the pipeline's label, else predict.label)
    section: PredictConfig
    storage: dict
    progress: Progress | None

    def tasks(self, out_uri: str, quarantine_uri: str | None) -> list[dict]:
        """Run one task per partition, each writing its part files; return the tasks' summaries."""
        sc = self.spark.sparkContext
        model = sc.broadcast(self.model_file.data)
        task = _task_function(self, model, out_uri, quarantine_uri)
        previous = self.spark.conf.get(_BATCH_ROWS, None)
        self.spark.conf.set(_BATCH_ROWS, str(self.section.batch_rows))
        try:
            mapped = self.frame.mapInArrow(carrying_errors(task), SUMMARY_SCHEMA)
            with spark_errors(TASK):
                rows = watched(self.spark, "predict", f"h3spark predict {self.model_file.uri}", mapped.collect,
                               self.progress)
        finally:
            if previous is None:
                self.spark.conf.unset(_BATCH_ROWS)
            else:
                self.spark.conf.set(_BATCH_ROWS, previous)
            model.destroy()
        tasks = [row.asDict() for row in rows]
        _check_bad_rows(tasks, self.section.max_bad_fraction)
        return tasks


def _task_function(run: _Run, model, out_uri: str, quarantine_uri: str | None):
    """The function each task runs over its Arrow batches (it yields one summary row)."""
    uri, kind, engine = run.model_file.uri, run.model_file.kind, run.model_file.engine
    text = run.pipeline.to_json() if run.pipeline is not None else None
    section, storage, label = run.section, run.storage, run.label

    def predict_partition(batches: Iterator[pa.RecordBatch]):
        from pyspark import TaskContext

        partition = TaskContext.get().partitionId()
        predictor = BatchPredictor(ModelFile(uri, kind, model.value, engine).load(),
                                   Pipeline.from_json(text) if text else None, section.features, label, section.keep)
        part = f"part-{partition:05d}.parquet"
        writer = PartWriter(out_uri, part, storage)
        bad = PartWriter(quarantine_uri, part, storage) if quarantine_uri else None
        counts = {"rows_in": 0, "rows_out": 0, "rows_bad": 0, "labelled": 0, "correct": 0}
        reasons: dict[str, int] = {}
        for batch in batches:
            block = predictor.predict(pa.Table.from_batches([batch]))
            writer.write(block.table)
            if bad is not None:
                bad.write(block.quarantine)
            for key, value in (("rows_in", block.rows_in), ("rows_out", block.table.num_rows),
                               ("rows_bad", block.quarantine.num_rows), ("labelled", block.labelled),
                               ("correct", block.correct)):
                counts[key] += value
            for reason in block.quarantine.column("reason").to_pylist():
                reasons[reason] = reasons.get(reason, 0) + 1
        writer.close()
        if bad is not None:
            bad.close()
        if counts["rows_in"]:
            yield pa.RecordBatch.from_pylist([{"partition": partition, **counts, "reasons": json.dumps(reasons)}])

    return predict_partition


def _check_bad_rows(tasks: list[dict], max_bad_fraction: float) -> None:
    counts = _counts(tasks)
    if counts["in"] != counts["out"] + counts["bad"]:
        raise JobFailedError(f"row count mismatch: the tasks read {counts['in']} rows, predicted {counts['out']} and "
                             f"quarantined {counts['bad']}. Nothing was written.")
    fraction = counts["bad"] / counts["in"] if counts["in"] else 0.0
    if fraction > max_bad_fraction:
        count, reason = max((n, r) for r, n in counts["reasons"].items())
        raise DataError(f"{counts['bad']} of {counts['in']} rows are bad ({fraction:.2%}), more than "
                        f"predict.max_bad_fraction={max_bad_fraction}. Most common: {count} x {reason}. Nothing was "
                        "written; fix the data or raise max_bad_fraction.")


def _counts(tasks: list[dict]) -> dict:
    counts = {key: sum(task[column] for task in tasks) for key, column in
              (("in", "rows_in"), ("out", "rows_out"), ("bad", "rows_bad"), ("labelled", "labelled"),
               ("correct", "correct"))}
    counts["reasons"] = {}
    for task in tasks:
        for reason, count in json.loads(task["reasons"]).items():
            counts["reasons"][reason] = counts["reasons"].get(reason, 0) + count
    return counts


def _to_dataset(run: _Run, config: H3SparkConfig, workdir, model: ServedModel) -> tuple[str, str, list[dict]]:
    output = run.section.output
    uri = resolve_uri(output.uri, workdir)
    quarantine_uri = resolve_uri(output.quarantine_uri or output.uri.rstrip("/") + "_quarantine", workdir)
    with ExitStack() as stack:
        tmp_uri = stack.enter_context(publishing(uri, overwrite=output.overwrite))
        quarantine_tmp = stack.enter_context(publishing(quarantine_uri, overwrite=output.overwrite))
        filesystem_for(quarantine_tmp).makedirs(quarantine_tmp)  # published even when empty
        tasks = run.tasks(tmp_uri, quarantine_tmp)
        counts = _counts(tasks)
        write_manifest(tmp_uri, _manifest(run, config, counts, tmp_uri, quarantine_uri, model))
        write_manifest(quarantine_tmp, {"rows": counts["bad"], "features": None, "label": None, "source": uri,
                                        "splits": describe_splits(quarantine_tmp), "reasons": counts["reasons"]})
    logger.info("published %d predictions dataset=%s", counts["out"], uri)
    return uri, quarantine_uri, tasks


def _to_table(run: _Run, section: PredictConfig, workdir) -> tuple[str, str | None, list[dict]]:
    sink = section.output.jdbc
    quarantine_uri = resolve_uri(section.output.quarantine_uri, workdir) if section.output.quarantine_uri else None
    with ExitStack() as stack:
        staging = stack.enter_context(_staging(resolve_uri(f"predict-staging-{uuid.uuid4().hex[:12]}", workdir)))
        quarantine_tmp = stack.enter_context(publishing(quarantine_uri, overwrite=section.output.overwrite)) \
            if quarantine_uri else None
        tasks = run.tasks(staging, quarantine_tmp)
        if _counts(tasks)["out"]:
            write_jdbc(run.spark.read.parquet(staging), sink, where="predict.output.jdbc")
        else:
            logger.warning("no row was predicted; table %s is left as it was", sink.table)
        if quarantine_tmp is not None:
            filesystem_for(quarantine_tmp).makedirs(quarantine_tmp)
            write_manifest(quarantine_tmp, {"rows": _counts(tasks)["bad"], "features": None, "label": None,
                                            "source": sink.table, "splits": describe_splits(quarantine_tmp)})
    return f"table {sink.table} at {sink.url}", quarantine_uri, tasks


@contextmanager
def _staging(uri: str) -> Iterator[str]:
    """A folder for the tasks' part files, deleted afterwards whatever happens."""
    fs = filesystem_for(uri)
    fs.makedirs(uri)
    try:
        yield uri
    finally:
        fs.delete(uri)


def _manifest(run: _Run, config: H3SparkConfig, counts: dict, tmp_uri: str, quarantine_uri: str, model: ServedModel) -> dict:
    source = run.section.input or config.source
    label = run.label
    return {"rows": counts["out"], "rows_in": counts["in"], "rows_quarantined": counts["bad"], "features": None,
            "label": label if label in run.frame.columns else None, "splits": describe_splits(tmp_uri),
            "columns": _columns(tmp_uri, len(model.classes)), "source": source.model_dump(exclude_none=True),
            "model": {"uri": run.model_file.uri, "engine": model.engine, "version": model.version,
                      "classes": [int(label) for label in model.classes]},
            "pipeline_from": run.pipeline_uri, "quarantine": quarantine_uri,
            "accuracy": counts["correct"] / counts["labelled"] if counts["labelled"] else None}


def _columns(tmp_uri: str, classes: int) -> dict:
    """dtype/shape/encoding of each stored column, from the first part file's schema."""
    import pyarrow.parquet as pq

    fs = filesystem_for(tmp_uri)
    parts = sorted(name for name in fs.listdir(tmp_uri) if name.endswith(".parquet"))
    if not parts:
        return {}
    with fs.open_input(join_uri(tmp_uri, parts[0])) as handle:
        schema = pq.read_schema(handle)
    return {column.name: ({"dtype": str(column.type.value_type), "shape": [classes], "encoding": "list"}
                          if pa.types.is_list(column.type) else {"dtype": str(column.type), "shape": [], "encoding": "scalar"})
            for column in schema}
