"""The distributed path: one barrier pass (fit + transform), or analysis scans then the transform.

In one pass each task holds its blocks, computes exact partial statistics and exchanges
them with ``BarrierTaskContext.allGather``; the merge is exact and order-free, so every
task fits the same state, then transforms and writes. That reads the input once: the
Arrow transfer and the Python workers, not the numpy work, set the speed on Spark.

Tasks receive the pipeline as JSON (never a pickled object), rebuild it, and run the
same numpy/pyarrow code as :meth:`Pipeline.transform` on each Arrow batch. The
transform pass writes Parquet from the tasks and returns one summary row per task.

``frame`` is a Spark DataFrame, or :class:`h3spark.ingest.ParquetTasks`, whose tasks read
their Parquet row groups themselves (there the scans beat one pass: each allGather waits on
Spark's one-second poll, while reading row groups again is cheap). Both offer ``mapInArrow``.

A task's own exception reaches the driver whole (``carrying_errors``): a BadRowError, a
DataError or a StorageError naming host and port is raised there with its own message.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Iterator

import pyarrow as pa

from h3spark.errors import ConfigError, JobFailedError
from h3spark.spark import carrying_errors, spark_errors
from h3spark.spark import task_slots as spark_task_slots

logger = logging.getLogger(__name__)

SUMMARY_SCHEMA = ("partition long, rows_in long, rows_out long, rows_bad long, files string, quarantine string, "
                  "fit_s double, pipeline string")
TASK = "a preprocessing task"


def fit_distributed(pipeline, frame, strict: bool = False):
    """Fit ``pipeline`` on a Spark DataFrame or ParquetTasks: one Spark scan per fit depth."""
    return pipeline._fit_with(lambda prefix, requests: distributed_partials(frame, pipeline, prefix, requests, strict))


def distributed_partials(frame, pipeline, prefix: int, requests, strict: bool) -> list[dict]:
    """One merged partial per Spark partition, after the first ``prefix`` steps."""
    text, pipeline_class = pipeline.to_json(), type(pipeline)  # the class travels by reference

    def analyse(batches: Iterator[pa.RecordBatch]):
        from h3spark.preprocess._stats import merge_partials

        local = pipeline_class.from_json(text)
        merged = None
        for batch in batches:
            partial = local.partial(pa.Table.from_batches([batch]), prefix, requests, strict)
            merged = partial if merged is None else merge_partials([merged, partial])
        if merged is not None:
            yield pa.RecordBatch.from_pydict({"partial": [json.dumps(merged)]})

    logger.info("fit scan after %d steps: %d statistics", prefix, len(requests))
    with spark_errors(TASK):
        rows = frame.mapInArrow(carrying_errors(analyse), "partial string").collect()
    return [json.loads(row.partial) for row in rows]


def distributed_transform(frame, pipeline, out_uri: str, quarantine_uri: str, strict: bool, row_groups: int,
                          storage: dict) -> list[dict]:
    """Transform every partition and write its part files; return one summary per task."""
    text, output = pipeline.to_json(), _Output(pipeline, out_uri, quarantine_uri, strict, row_groups, storage)
    pipeline_class = type(pipeline)

    def transform(batches: Iterator[pa.RecordBatch]):
        from pyspark import TaskContext

        local = pipeline_class.from_json(text)
        yield from output.write(local, (pa.Table.from_batches([batch]) for batch in batches),
                                TaskContext.get().partitionId(), 0.0)

    with spark_errors(TASK):
        rows = frame.mapInArrow(carrying_errors(transform), SUMMARY_SCHEMA).collect()
    return [row.asDict() for row in rows]


def one_pass_transform(frame, pipeline, out_uri: str, quarantine_uri: str, strict: bool, row_groups: int,
                       storage: dict) -> list[dict]:
    """Fit and transform in one read: a barrier stage whose tasks hold their blocks, exchange exact
    partial statistics with allGather (so every task fits the same state), then transform and write.
    Each summary carries the task's fitted pipeline as JSON."""
    text, output = pipeline.to_json(), _Output(pipeline, out_uri, quarantine_uri, strict, row_groups, storage)
    pipeline_class = type(pipeline)

    def fit_and_transform(batches: Iterator[pa.RecordBatch]):
        from pyspark import BarrierTaskContext

        context, started = BarrierTaskContext.get(), time.monotonic()
        tables = [pa.Table.from_batches([batch]) for batch in batches]
        local = pipeline_class.from_json(text).fit_blocks(tables, strict, lambda partial: [
            json.loads(message) for message in context.allGather(json.dumps(partial))])
        yield from output.write(local, tables, context.partitionId(), time.monotonic() - started, local.to_json())

    with spark_errors(TASK):
        rows = frame.mapInArrow(carrying_errors(fit_and_transform), SUMMARY_SCHEMA, barrier=True).collect()
    return [row.asDict() for row in rows]


def use_one_pass(section, size_bytes: int | None, slots: int, partitions: int | None) -> bool:
    """Whether to fit and transform in one barrier pass (see PreprocessConfig.fit_mode)."""
    if section.fit_mode == "scans":
        return False
    if section.fit_mode == "one_pass":
        if partitions is not None and partitions > slots:
            raise ConfigError("preprocess", [f"fit_mode one_pass runs every partition at once, but dataset.partitions is "
                                             f"{partitions} and the cluster has {slots} task slots. Lower dataset.partitions "
                                             f"to {slots} or less, or set preprocess.fit_mode: scans."])
        return True
    logger.info("input estimate %s bytes, %d task slots", size_bytes, slots)
    fits = size_bytes is not None and size_bytes <= section.one_pass_max_mib << 20
    return fits and (partitions is None or partitions <= slots)


def fit_slots(frame, slots: int):
    """The frame in at most one partition per task slot: a barrier stage runs them all at once, and
    it cannot coalesce its input, so more partitions than slots cost a shuffle."""
    return frame.repartition(slots) if frame.rdd.getNumPartitions() > slots else frame


def agreed_pipeline(tasks: list[dict], pipeline):
    """The pipeline every one-pass task fitted (they must agree: the statistics are exact)."""
    fitted = {task["pipeline"] for task in tasks}
    if len(fitted) > 1:
        raise JobFailedError(f"the one-pass tasks fitted {len(fitted)} different pipelines; use preprocess.fit_mode: scans.")
    return type(pipeline).from_json(fitted.pop()) if fitted else pipeline.fit_blocks([])


def task_slots(spark) -> int:
    """How many tasks the cluster runs at once (what a barrier stage may use), at least one."""
    return max(1, spark_task_slots(spark.sparkContext))


def size_bytes(frame) -> int | None:
    """Spark's estimate of a DataFrame's size; None where Spark does not know it."""
    try:
        size = frame._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()
        size = int(size if isinstance(size, int) else size.toString())
    except Exception:  # noqa: BLE001 - an estimate only; without one, auto picks the scans
        return None
    return size if size < 1 << 62 else None


class _Output:
    """What a task needs to transform its blocks and write its part files (pickled to the tasks)."""

    def __init__(self, pipeline, out_uri, quarantine_uri, strict, row_groups, storage):
        split_columns = pipeline.split_columns()
        self.split_column = split_columns[-1] if split_columns else None
        self.features, self.out_uri, self.quarantine_uri = pipeline.features, out_uri, quarantine_uri
        self.strict, self.row_groups, self.storage = strict, row_groups, storage

    def write(self, local, tables, partition: int, fit_s: float, fitted: str = ""):
        """Transform the blocks and write them; yield the task's summary row (nothing for an empty task)."""
        from h3spark.preprocess._writer import for_parquet, write_splits

        outputs, quarantined, rows_in = [], [], 0
        for table in tables:
            result = local.transform(table, self.strict)
            rows_in += result.rows_in
            outputs.append(for_parquet(result.table, self.features))
            if result.quarantine.num_rows:
                quarantined.append(result.quarantine)
        if rows_in == 0:
            return
        part = f"part-{partition:05d}.parquet"
        table = pa.concat_tables(outputs)
        files = write_splits(table, self.out_uri, self.split_column, part, self.row_groups, self.storage)
        bad = pa.concat_tables(quarantined) if quarantined else None
        if bad is not None:
            write_splits(bad, self.quarantine_uri, None, part, 1, self.storage)
        yield pa.RecordBatch.from_pydict({
            "partition": [partition], "rows_in": [rows_in], "rows_out": [table.num_rows],
            "rows_bad": [bad.num_rows if bad is not None else 0], "files": [json.dumps(files)],
            "quarantine": [_reasons(bad)], "fit_s": [fit_s], "pipeline": [fitted]})


def _reasons(bad) -> str:
    """Counts of quarantine reasons of one task (for the summary), as JSON."""
    if bad is None:
        return "{}"
    counts: dict[str, int] = {}
    for reason in bad.column("reason").to_pylist():
        counts[reason] = counts.get(reason, 0) + 1
    return json.dumps(counts)
