"""The distributed path: analysis scans and the transform pass as mapInArrow tasks.

Tasks receive the pipeline as JSON (never a pickled object), rebuild it, and run the
same numpy/pyarrow code as :meth:`Pipeline.transform` on each Arrow batch. The
transform pass writes Parquet from the tasks and returns one summary row per task.
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from typing import Iterator

import pyarrow as pa

from h3spark.errors import DataError, JobFailedError
from h3spark.preprocess._block import BadRowError

logger = logging.getLogger(__name__)

SUMMARY_SCHEMA = "partition long, rows_in long, rows_out long, rows_bad long, files string, quarantine string"
_ERROR_LINE = re.compile(r"(BadRowError|DataError|ConfigError): (.+)")


def distributed_partials(frame, pipeline, prefix: int, requests, strict: bool) -> list[dict]:
    """One merged partial per Spark partition, after the first ``prefix`` steps."""
    text = pipeline.to_json()

    def analyse(batches: Iterator[pa.RecordBatch]):
        from h3spark.preprocess._pipeline import Pipeline
        from h3spark.preprocess._stats import merge_partials

        local = Pipeline.from_json(text)
        merged = None
        for batch in batches:
            partial = local.partial(pa.Table.from_batches([batch]), prefix, requests, strict)
            merged = partial if merged is None else merge_partials([merged, partial])
        if merged is not None:
            yield pa.RecordBatch.from_pydict({"partial": [json.dumps(merged)]})

    logger.info("fit scan after %d steps: %d statistics", prefix, len(requests))
    with translated_task_errors():
        rows = frame.mapInArrow(analyse, "partial string").collect()
    return [json.loads(row.partial) for row in rows]


def distributed_transform(frame, pipeline, out_uri: str, quarantine_uri: str, strict: bool, row_groups: int,
                          storage: dict) -> list[dict]:
    """Transform every partition and write its part files; return one summary per task."""
    text = pipeline.to_json()
    split_columns = pipeline.split_columns()
    split_column = split_columns[-1] if split_columns else None
    features = pipeline.features

    def transform(batches: Iterator[pa.RecordBatch]):
        from pyspark import TaskContext

        from h3spark.preprocess._pipeline import Pipeline
        from h3spark.preprocess._writer import for_parquet, write_splits

        local = Pipeline.from_json(text)
        outputs, quarantined, rows_in = [], [], 0
        for batch in batches:
            result = local.transform(pa.Table.from_batches([batch]), strict)
            rows_in += result.rows_in
            outputs.append(for_parquet(result.table, features))
            if result.quarantine.num_rows:
                quarantined.append(result.quarantine)
        if rows_in == 0:
            return
        partition = TaskContext.get().partitionId()
        part = f"part-{partition:05d}.parquet"
        table = pa.concat_tables(outputs)
        files = write_splits(table, out_uri, split_column, part, row_groups, storage)
        bad = pa.concat_tables(quarantined) if quarantined else None
        bad_files = write_splits(bad, quarantine_uri, None, part, 1, storage) if bad is not None else []
        yield pa.RecordBatch.from_pydict({
            "partition": [partition], "rows_in": [rows_in], "rows_out": [table.num_rows],
            "rows_bad": [bad.num_rows if bad is not None else 0], "files": [json.dumps(files)],
            "quarantine": [_reasons(bad)]})

    with translated_task_errors():
        rows = frame.mapInArrow(transform, SUMMARY_SCHEMA).collect()
    return [row.asDict() for row in rows]


def _reasons(bad) -> str:
    """Counts of quarantine reasons of one task (for the summary), as JSON."""
    if bad is None:
        return "{}"
    counts: dict[str, int] = {}
    for reason in bad.column("reason").to_pylist():
        counts[reason] = counts.get(reason, 0) + 1
    return json.dumps(counts)


@contextmanager
def translated_task_errors():
    """Raise an h3spark error from a task's failure on the driver, keeping its message."""
    try:
        yield
    except Exception as error:  # pyspark's PythonException / Py4JJavaError carry the task traceback as text
        text = str(error)
        if "Traceback" not in text and "Exception" not in type(error).__name__ and "Error" not in type(error).__name__:
            raise
        found = _ERROR_LINE.findall(text)
        if not found:
            raise JobFailedError(f"a preprocessing task failed: {_tail(text)}") from None
        kind, message = found[-1]
        raise (BadRowError if kind == "BadRowError" else DataError)(message.strip()) from None


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
