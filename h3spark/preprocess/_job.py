"""The preprocessing job: read the source, fit, transform, write and publish atomically.

    >>> result = preprocess(load_config("conf/preprocess_example.yaml"), workdir="/tmp/work")
    >>> result.rows_out, result.uri

The CLI (``h3spark preprocess``), ``jobs/preprocess.py`` and the workflow stage all
call :func:`preprocess`.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from h3spark.config import H3SparkConfig
from h3spark.config._preprocess import PreprocessConfig
from h3spark.errors import ConfigError, DataError, JobFailedError
from h3spark.preprocess._base import preprocessor_for
from h3spark.preprocess._expectations import Expectations
from h3spark.preprocess._pipeline import Pipeline
from h3spark.preprocess._spark import (agreed_pipeline, distributed_transform, fit_slots, one_pass_transform, size_bytes,
                                      task_slots, use_one_pass)
from h3spark.preprocess._expect_report import write_report
from h3spark.storage import (describe_splits, filesystem_for, join_uri, publishing, resolve_published, resolve_uri,
                             write_manifest)

logger = logging.getLogger(__name__)

_QUARANTINE_COLUMNS = {name: {"dtype": "string", "shape": [], "encoding": "scalar"} for name in ("row", "reason", "step")}


@dataclass
class PreprocessResult:
    """What a preprocessing run produced (the end summary)."""

    uri: str
    quarantine_uri: str
    rows_in: int
    rows_out: int
    rows_quarantined: int
    splits: dict[str, int]
    reasons: dict[str, int]
    fit_s: float
    transform_s: float
    pipeline: Pipeline = field(repr=False)
    expectations: dict | None = None  # checked, failed, on_failure, report (when preprocess.validate is set)

    def summary(self) -> list[tuple[str, str]]:
        top = sorted(self.reasons.items(), key=lambda item: -item[1])[:3]
        lines = [("rows in", str(self.rows_in)), ("rows out", str(self.rows_out)),
                 ("rows quarantined", str(self.rows_quarantined)),
                 ("splits", ", ".join(f"{name}={rows}" for name, rows in self.splits.items())),
                 ("dataset", self.uri), ("quarantine", self.quarantine_uri),
                 ("fit / transform", f"{self.fit_s:.1f} s / {self.transform_s:.1f} s")]
        if self.expectations:
            checks = self.expectations
            lines.append(("expectations", f"{checks['checked'] - checks['failed']} of {checks['checked']} hold"
                          + (f", {checks['failed']} violated (on_failure: warn)" if checks["failed"] else "")
                          + f"; report {join_uri(resolve_published(self.uri), checks['report'])}"))
        return lines + [("bad rows", f"{count} x {reason}") for reason, count in top]


def pipeline_from_config(section: PreprocessConfig) -> Pipeline:
    """The (unfitted) pipeline a ``preprocess:`` section describes."""
    return Pipeline([preprocessor_for(step) for step in section.steps], features=section.features,
                    label=section.label, keep=section.keep)


def preprocess(config: H3SparkConfig, workdir: str | None = None, spark=None) -> PreprocessResult:
    """Run the ``preprocess:`` section of a config on Spark and publish the dataset."""
    section = _section(config)
    from h3spark.ingest import parquet_files, read_source
    from h3spark.spark import get_spark

    spark = spark or get_spark(config.spark)
    slots, partitions = task_slots(spark), config.dataset.partitions
    files = parquet_files(config.source, workdir, config.storage.model_dump(), section.reader,
                          spark.conf.get("spark.sql.session.timeZone", "UTC"))
    if files is not None and partitions and partitions > len(files.pieces):
        message = (f"dataset.partitions is {partitions} but the source has {len(files.pieces)} row groups, and the "
                   "tasks read whole row groups")
        if section.reader == "auto":
            logger.info("Spark reads the source: %s (Spark repartitions the rows)", message)
            files = None
        else:
            logger.warning("%s: %d tasks get nothing to do", message, partitions - len(files.pieces))
    if files is not None:  # the tasks read the row groups themselves: nothing to cache or repartition
        # reading row groups again costs less than a barrier exchange per fit depth (allGather answers
        # on a one-second poll in Spark's BarrierTaskContext), so auto fits in scans here
        one_pass = section.fit_mode == "one_pass" and use_one_pass(section, files.size_bytes, slots, partitions)
        tasks = partitions or (min(slots, len(files.pieces)) if one_pass else files.default_tasks(slots))
        logger.info("the tasks read %d row groups (%d rows) with pyarrow, in %d tasks source=%s",
                    len(files.pieces), files.rows, tasks, files.uri)
        return _run(config, section, files.tasks(spark, max(1, tasks)), workdir, one_pass)
    frame = read_source(spark, config.source, workdir)
    if partitions:
        frame = frame.repartition(partitions)
    one_pass = use_one_pass(section, size_bytes(frame), slots, partitions)
    if one_pass:
        frame = fit_slots(frame, slots)
    cache = section.cache_input and not one_pass  # one pass reads the input once: nothing to cache
    if cache:
        frame = frame.cache()
    try:
        return _run(config, section, frame, workdir, one_pass)
    finally:
        if cache:
            frame.unpersist()


def _section(config: H3SparkConfig) -> PreprocessConfig:
    problems = []
    if getattr(config, "preprocess", None) is None:
        problems.append("preprocess: required, but missing. Add a preprocess: section with steps.")
    if config.source is None:
        problems.append("source: required, but missing. Add a source: section (csv, json, parquet, bundled or kafka).")
    if problems:
        raise ConfigError(config.name, problems)
    return config.preprocess


def _run(config: H3SparkConfig, section: PreprocessConfig, frame, workdir, one_pass: bool) -> PreprocessResult:
    uri = resolve_uri(config.dataset.uri, workdir)
    quarantine_uri = resolve_uri(section.quarantine_uri or config.dataset.uri.rstrip("/") + "_quarantine", workdir)
    pipeline = pipeline_from_config(section)
    started = time.monotonic()
    checks = _expectations(section, frame, pipeline, uri, workdir)
    if not one_pass:
        logger.info("fitting %d steps in %d scans dataset=%s", len(pipeline.steps), _scans(pipeline), uri)
        pipeline.fit(frame, strict=section.strict)
        _settle(checks, pipeline, uri, workdir)
        check_state_size(pipeline, section.max_state_mib)
    fit_s = time.monotonic() - started
    with ExitStack() as stack:
        tmp_uri = stack.enter_context(publishing(uri, overwrite=config.dataset.overwrite))
        quarantine_tmp = stack.enter_context(publishing(quarantine_uri, overwrite=config.dataset.overwrite))
        filesystem_for(quarantine_tmp).makedirs(quarantine_tmp)  # published even when empty
        logger.info("%s dataset=%s", "fitting and transforming in one pass" if one_pass else "transforming", uri)
        transform = one_pass_transform if one_pass else distributed_transform
        tasks = transform(frame, pipeline, tmp_uri, quarantine_tmp, section.strict, section.row_groups_per_file,
                          config.storage.model_dump())
        if one_pass:
            pipeline, fit_s = agreed_pipeline(tasks, pipeline), max((t["fit_s"] for t in tasks), default=0.0)
            _settle(checks, pipeline, uri, workdir)
            check_state_size(pipeline, section.max_state_mib)
        counts = _check_counts(tasks, pipeline.rows_fitted_, section.max_bad_fraction, quarantine_uri)
        splits = describe_splits(tmp_uri)
        manifest = _manifest(config, section, pipeline, frame, counts, splits, tmp_uri, quarantine_uri)
        if checks is not None:  # the report goes beside the manifest, in the version being published
            write_report(tmp_uri, checks.report(uri, published=True))
            manifest["expectations"] = checks.summary()
        write_manifest(tmp_uri, manifest)
        write_manifest(quarantine_tmp, {"rows": counts["bad"], "features": None, "label": None, "source": uri,
                                        "columns": _QUARANTINE_COLUMNS, "splits": describe_splits(quarantine_tmp),
                                        "reasons": counts["reasons"]})
    transform_s = time.monotonic() - started - fit_s
    logger.info("fit %.1f s, transform and write %.1f s, %d rows in dataset=%s", fit_s, transform_s, counts["in"], uri)
    return PreprocessResult(uri, quarantine_uri, counts["in"], counts["out"], counts["bad"],
                            {name: split["rows"] for name, split in splits.items()}, counts["reasons"], fit_s,
                            transform_s, pipeline, checks.summary() if checks is not None else None)


def _expectations(section: PreprocessConfig, frame, pipeline: Pipeline, uri: str, workdir) -> Expectations | None:
    """The checks of preprocess.validate, their ``expect`` step put first in ``pipeline`` (its statistics ride on
    the first fit scan). A column missing or of the wrong type fails before the pipeline's own steps read it:
    then the checks run alone, in one scan, and every violation is listed."""
    if section.validate is None:
        return None
    checks = Expectations.plan(section.validate, frame, workdir)
    if checks.schema_failed() and section.validate.on_failure == "fail":
        alone = Pipeline([], label=None)
        checks.attach(alone)
        if alone.steps:
            alone.fit(frame, strict=section.strict)
        _settle(checks, alone, uri, workdir)
    checks.attach(pipeline)
    return checks


def _settle(checks: Expectations | None, pipeline: Pipeline, uri: str, workdir) -> None:
    if checks is not None:
        checks.settle(pipeline)
        checks.enforce(uri, workdir)


def check_state_size(pipeline: Pipeline, max_state_mib: float) -> None:
    """A DataError when the fitted pipeline's JSON (saved in the manifest, sent to every task)
    exceeds ``max_state_mib``, naming the step that holds the most and how to bound it."""
    sizes = [(len(json.dumps(step.to_dict(), default=str)), step.name) for step in pipeline.steps]
    total = sum(size for size, _ in sizes)
    if total <= max_state_mib * (1 << 20):
        return
    largest, name = max(sizes)
    raise DataError(f"the fitted pipeline holds {_mib(total)} of state, more than preprocess.max_state_mib="
                    f"{max_state_mib:g}; {name} holds {_mib(largest)} of it. Nothing was published. Bound it "
                    "(max_categories or max_category_chars of one_hot / string_index; hash_features for a column of "
                    "many distinct values), or raise preprocess.max_state_mib.")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _scans(pipeline: Pipeline) -> int:
    return sum(1 for group in pipeline.depths() if any(pipeline.steps[i].needs_fit for i in group))


def _check_counts(tasks: list[dict], rows_expected: int | None, max_bad_fraction: float, quarantine_uri: str) -> dict:
    counts = {"in": sum(t["rows_in"] for t in tasks), "out": sum(t["rows_out"] for t in tasks),
              "bad": sum(t["rows_bad"] for t in tasks), "reasons": {}}
    for task in tasks:
        for reason, count in json.loads(task["quarantine"]).items():
            counts["reasons"][reason] = counts["reasons"].get(reason, 0) + count
    read_again = rows_expected is not None and counts["in"] != rows_expected  # the fit scan saw other rows
    if read_again or counts["in"] != counts["out"] + counts["bad"]:
        raise JobFailedError(f"row count mismatch: the fit read {rows_expected} rows, the tasks read {counts['in']}, "
                             f"wrote {counts['out']} and quarantined {counts['bad']}. Nothing was published.")
    fraction = counts["bad"] / counts["in"] if counts["in"] else 0.0
    if fraction > max_bad_fraction:
        top = max(counts["reasons"].items(), key=lambda item: item[1])
        raise DataError(f"{counts['bad']} of {counts['in']} rows are bad ({fraction:.2%}), more than "
                        f"preprocess.max_bad_fraction={max_bad_fraction}. Most common: {top[1]} x {top[0]}. Nothing was "
                        f"published; fix the data or raise max_bad_fraction (bad rows would go to {quarantine_uri}).")
    return counts


def _manifest(config, section, pipeline: Pipeline, frame, counts, splits, tmp_uri, quarantine_uri) -> dict:
    return {
        "rows": counts["out"], "rows_in": counts["in"], "rows_quarantined": counts["bad"],
        "features": section.features, "label": section.label,
        "columns": _columns(pipeline, splits, tmp_uri),
        "splits": splits, "source": config.source.model_dump(exclude_none=True),
        "source_schema": frame.schema.jsonValue(), "pipeline": pipeline.to_dict(), "quarantine": quarantine_uri,
    }


def _columns(pipeline: Pipeline, splits: dict, tmp_uri: str) -> dict:
    """dtype/shape/encoding of each stored column, read from the first part file's schema."""
    import pyarrow.parquet as pq

    first = next((item["path"] for split in splits.values() for item in split["files"]), None)
    if first is None:
        return {}
    with filesystem_for(tmp_uri).open_input(join_uri(tmp_uri, first)) as handle:
        schema = pq.read_schema(handle)
    columns = {}
    for column in schema:
        if column.name == pipeline.features:
            columns[column.name] = {"dtype": "float32", "shape": [column.type.byte_width // 4], "encoding": "binary"}
        else:
            columns[column.name] = {"dtype": str(column.type), "shape": [], "encoding": "scalar"}
    return columns
