"""Streaming ingest on a cluster: a Spark Structured Streaming job applies a fitted pipeline to a raw topic
and publishes the feature rows to a topic as ``features`` messages, which actors train from unchanged.

    >>> result = run_stream(config, workdir, spark, progress=print, until_drained=True)
    batch 0: 1797 rows in, 1790 feature rows out in 8 messages, 7 quarantined (2.1 s)
    >>> result.rows_bad
    7

Spark's Kafka source reads ``stream.input`` (``readStream``); each micro-batch's records go through
the pipeline in the Spark tasks (``mapInArrow``, :func:`apply_block`: the Arrow-block apply of batch
preprocessing and the actors' record parsing), and ``foreachBatch`` writes the messages with Spark's
Kafka sink and adds up the counts. Progress is checkpointed under ``DIR/NAME/checkpoint``, so a job
started again reads on from the first offset not yet processed (Spark may run the last micro-batch
again: its messages keep their ids, which actors skip as duplicates). Bad rows go to
``DIR/NAME/quarantine/batch-B-part-P.parquet`` (the quarantine schema of batch preprocessing), each
file written under a hidden name and renamed into place.

Not offered: appending the feature rows to a Parquet dataset. h3spark's atomic publish makes a whole
new version of a dataset visible at once; a version per micro-batch would copy every earlier batch.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator

import pyarrow as pa

from h3spark.actors._control import end_marker
from h3spark.actors._kafka import KafkaTransport
from h3spark.actors._intake import pipeline_of
from h3spark.actors._stream_batch import TASK_SCHEMA as _TASK_SCHEMA
from h3spark.actors._stream_batch import StreamSettings, apply_block
from h3spark.config import H3SparkConfig, StreamConfig
from h3spark.errors import DataError
from h3spark.ingest._kafka import _hints as _kafka_hints
from h3spark.preprocess import Pipeline
from h3spark.preprocess._block import QUARANTINE_SCHEMA
from h3spark.preprocess._writer import write_part
from h3spark.spark import carrying_errors, spark_errors
from h3spark.storage import filesystem_for, join_uri, resolve_uri
from h3spark.transport import kafka

logger = logging.getLogger(__name__)

REQUEST_OVERHEAD_BYTES = 64 * 1024
WAIT_S = 0.5
TASK = "a streaming task"
_HINTS = _kafka_hints()
COUNTS = ("rows_in", "rows_out", "rows_bad", "skipped", "messages")


@dataclass
class StreamResult:
    """The counts of a streaming run: micro-batches, rows in/out/quarantined, messages published."""

    batches: int = 0
    rows_in: int = 0
    rows_out: int = 0
    rows_bad: int = 0
    messages: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stopped_by: str = "running"
    checkpoint: str = ""
    quarantine: str = ""

    def add(self, summaries: list[dict]) -> dict:
        """Add one micro-batch's task summaries; that batch's counts."""
        batch = {key: sum(row[key] for row in summaries) for key in COUNTS}
        for key, value in batch.items():
            setattr(self, key, getattr(self, key) + value)
        for row in summaries:
            for reason, count in json.loads(row["reasons"] or "{}").items():
                self.reasons[reason] = self.reasons.get(reason, 0) + count
        self.batches += 1
        return batch


def stream_settings(section: StreamConfig, name: str, pipeline: Pipeline) -> StreamSettings:
    config = section.pipeline
    return StreamSettings(sender=section.sender or name, pipeline_json=pipeline.to_json(),
                          text_format=section.text_format, columns=tuple(section.columns) if section.columns else None,
                          types=dict(config.types), csv_default_type=config.csv_default_type,
                          rows_per_message=section.rows_per_message, max_record_bytes=section.max_record_bytes)


def write_quarantine(rows: list[dict], folder_uri: str, name: str, storage: dict) -> str:
    """``rows`` as one Parquet file ``name`` of the quarantine, written hidden and renamed into place
    (replacing the file a rerun of the same micro-batch wrote)."""
    table = pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
    hidden = f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    write_part(table, folder_uri, hidden, 1, storage)
    fs = filesystem_for(folder_uri, storage.get("webhdfs_url"), storage.get("hdfs_user"))
    target = join_uri(folder_uri, name)
    if fs.exists(target):
        fs.delete(target)
    fs.rename(join_uri(folder_uri, hidden), target)
    return target


def stream_task(settings: StreamSettings, batch_id: int, quarantine_uri: str, storage: dict):
    """The mapInArrow function of one micro-batch: messages for the output topic, then a summary per block."""

    def run(batches: Iterator[pa.RecordBatch]):
        from pyspark import TaskContext

        pipeline, quarantined = Pipeline.from_json(settings.pipeline_json), []
        for batch in batches:
            result = apply_block(pa.Table.from_batches([batch]), settings, pipeline)
            quarantined.extend(result.quarantine)
            yield _message_rows(result.records)
            yield _summary_row(result)
        if quarantined:
            part = f"batch-{batch_id:08d}-part-{TaskContext.get().partitionId():05d}.parquet"
            write_quarantine(quarantined, quarantine_uri, part, storage)

    return carrying_errors(run)


def _message_rows(records: list[tuple[bytes, bytes]]) -> pa.RecordBatch:
    columns = {"key": pa.array([key for key, _ in records], pa.binary()),
               "value": pa.array([value for _, value in records], pa.binary())}
    columns.update({name: pa.array([0] * len(records), pa.int64()) for name in COUNTS})
    columns["reasons"] = pa.array([None] * len(records), pa.string())
    return pa.RecordBatch.from_pydict(columns)


def _summary_row(result) -> pa.RecordBatch:
    counts = {"rows_in": result.rows_in, "rows_out": result.rows_out, "rows_bad": len(result.quarantine),
              "skipped": result.skipped, "messages": result.messages}
    columns = {"key": pa.array([None], pa.binary()), "value": pa.array([None], pa.binary())}
    columns.update({name: pa.array([counts[name]], pa.int64()) for name in COUNTS})
    columns["reasons"] = pa.array([json.dumps(result.reasons())], pa.string())
    return pa.RecordBatch.from_pydict(columns)


class StreamJob:
    """One streaming run: the query, its micro-batches and its counts."""

    def __init__(self, config: H3SparkConfig, workdir: str, spark, progress: Callable[[str], None] = logger.info):
        section = config.stream
        self.section, self.spark, self.progress = section, spark, progress
        home = resolve_uri(join_uri(section.dir, config.name), workdir)
        self.result = StreamResult(checkpoint=join_uri(home, "checkpoint"), quarantine=join_uri(home, "quarantine"))
        self.settings = stream_settings(section, config.name, _load_pipeline(section, workdir))
        self.storage = config.storage.model_dump()
        self.stop_requested = threading.Event()  # set from a signal handler: the run stops at its next look

    def process(self, frame, batch_id: int) -> None:
        """foreachBatch: transform in the tasks, publish with Spark's Kafka sink, add up the counts."""
        started = time.monotonic()
        task = stream_task(self.settings, batch_id, self.result.quarantine, self.storage)
        section = self.section
        out = frame.select("topic", "partition", "offset", "value").mapInArrow(task, _TASK_SCHEMA).persist()
        try:
            with spark_errors(f"micro-batch {batch_id} of the streaming job", _HINTS):
                (out.where("value IS NOT NULL").select("key", "value").write.format("kafka")
                 .option("kafka.bootstrap.servers", section.bootstrap_servers).option("topic", section.output)
                 .option("kafka.max.request.size", str(section.max_record_bytes + REQUEST_OVERHEAD_BYTES)).save())
                summaries = [row.asDict() for row in out.where("value IS NULL").drop("key", "value").collect()]
        finally:
            out.unpersist()
        batch = self.result.add(summaries)
        self.progress(f"batch {batch_id}: {batch['rows_in']} rows in, {batch['rows_out']} feature rows out in "
                      f"{batch['messages']} messages, {batch['rows_bad']} quarantined ({time.monotonic() - started:.1f} s)")

    def start(self, until_drained: bool):
        """The running query: from the checkpoint, or from ``starting_offsets`` the first time."""
        section = self.section
        with kafka.translate_errors("creating topics", section.bootstrap_servers, _HINTS[DataError]):
            kafka.ensure_topics(section.bootstrap_servers, [section.input, section.output], 1)
        reader = (self.spark.readStream.format("kafka").option("kafka.bootstrap.servers", section.bootstrap_servers)
                  .option("subscribe", section.input).option("startingOffsets", section.starting_offsets))
        if section.max_offsets_per_trigger is not None:
            reader = reader.option("maxOffsetsPerTrigger", str(section.max_offsets_per_trigger))
        with spark_errors(f"starting the streaming job on topic {section.input!r}", _HINTS):
            writer = reader.load().writeStream.foreachBatch(self.process).option("checkpointLocation",
                                                                                 self.result.checkpoint)
            writer = writer.trigger(availableNow=True) if until_drained else writer.trigger(
                processingTime=f"{section.trigger_s} seconds")
            return writer.start()

    def run(self, until_drained: bool = False, max_batches: int | None = None,
            timeout_s: float | None = None) -> StreamResult:
        """Run until the topic is drained (``until_drained``), ``max_batches`` micro-batches ran, ``timeout_s``
        passed, :attr:`stop_requested` is set, or Ctrl-C; publish the end marker (``end_marker``) and return the counts."""
        started = time.monotonic()
        query = self.start(until_drained)
        try:
            self.result.stopped_by = self._wait(query, started, max_batches, timeout_s)
        finally:
            if query.isActive:
                query.stop()
            self.result.seconds = time.monotonic() - started
        if self.section.end_marker:
            with KafkaTransport(self.section.bootstrap_servers) as transport:
                transport.publish(self.section.output, end_marker(self.settings.sender))
        return self.result

    def _wait(self, query, started: float, max_batches: int | None, timeout_s: float | None) -> str:
        with spark_errors("the streaming job", _HINTS):
            try:
                while not query.awaitTermination(WAIT_S):
                    if self.stop_requested.is_set():
                        return "stopped"
                    if max_batches is not None and self.result.batches >= max_batches:
                        return "max_batches"
                    if timeout_s is not None and time.monotonic() - started >= timeout_s:
                        return "timeout"
            except KeyboardInterrupt:
                return "interrupted"
        return "drained"


def run_stream(config: H3SparkConfig, workdir: str, spark, progress: Callable[[str], None] = logger.info,
               until_drained: bool = False, max_batches: int | None = None,
               timeout_s: float | None = None) -> StreamResult:
    """Run the config's ``stream:`` job on ``spark`` (a session with Spark's Kafka package); its counts."""
    job = StreamJob(config, workdir, spark, progress)
    return job.run(until_drained, max_batches, timeout_s)


def _load_pipeline(section: StreamConfig, workdir: str) -> Pipeline:
    pipeline = pipeline_of(section.pipeline, workdir)
    if not pipeline.is_fitted:
        raise DataError(f"the pipeline of stream.pipeline ({section.pipeline.uri or section.pipeline.file}) is not "
                        "fitted; save a fitted one (h3spark preprocess writes it into the dataset's manifest).")
    return pipeline
