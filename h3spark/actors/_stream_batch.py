"""What a streaming job's Spark task does with its Kafka records: raw records through the fitted pipeline,
feature rows out as ``features`` messages, bad rows to the quarantine (no Spark needed to test it).

    >>> block = pa.table({"topic": [...], "partition": [...], "offset": [...], "value": [...]})
    >>> result = apply_block(block, settings)
    >>> result.records          # (key, value) pairs for the output topic: encoded envelopes (or their chunks)
    >>> result.quarantine       # {row, reason, step} dicts, as batch preprocessing quarantines them

A record's value is an h3spark ``raw`` message (its records parsed as the actors parse them:
:func:`records_table`), or, when it does not start with the envelope's magic, one record of plain
text in ``text_format``. A message that cannot be decoded, or a chunk of a raw message too large for
one record, is one bad row; other kinds (an end marker) are skipped. Records of messages marked
``split: holdout`` come out in messages marked so too. A features message's id is derived from the
pipeline and the offsets it came from, so a micro-batch that Spark runs again (after a failure
before its checkpoint) publishes the same ids, which actors skip as duplicates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from h3spark.actors._chunks import split
from h3spark.actors._envelope import MAGIC, encode, decode
from h3spark.actors._intake import Intake
from h3spark.actors._records import features_envelope, raw_envelope, records_table
from h3spark.errors import DataError, EnvelopeError
from h3spark.preprocess import Pipeline

#: What each task returns to the driver: a message for the output topic per row, and one summary row
#: (value null) per block with its counts.
TASK_SCHEMA = ("key binary, value binary, rows_in long, rows_out long, rows_bad long, skipped long, messages long, "
               "reasons string")
HOLDOUT = "holdout"
PREVIEW_CHARS = 1000


@dataclass(frozen=True)
class StreamSettings:
    """What a task needs (plain values: the pipeline travels as JSON, never pickled)."""

    sender: str
    pipeline_json: str
    text_format: str = "json"
    columns: tuple[str, ...] | None = None
    types: dict = field(default_factory=dict)
    csv_default_type: str = "float64"
    rows_per_message: int = 256
    max_record_bytes: int = 1_000_000

    @property
    def digest(self) -> str:
        return hashlib.blake2b(self.pipeline_json.encode(), digest_size=8).hexdigest()


@dataclass
class BlockResult:
    """One block's output: records for the output topic, quarantined rows, and counts."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0
    skipped: int = 0
    messages: int = 0

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.quarantine:
            counts[row["reason"]] = counts.get(row["reason"], 0) + 1
        return counts


def apply_block(block: pa.Table, settings: StreamSettings, pipeline: Pipeline | None = None) -> BlockResult:
    """Parse, transform and encode one Arrow block of Kafka records (columns topic, partition, offset, value)."""
    result = BlockResult()
    intake = Intake(pipeline or Pipeline.from_json(settings.pipeline_json), 1, None)
    if not intake.fitted:
        raise DataError("the streaming job's pipeline is not fitted; give stream.pipeline a uri (a preprocessed "
                        "dataset) or a file (a fitted pipeline's JSON).")
    tables = _record_tables(block, settings, result)
    for tag, table in tables.items():
        result.rows_in += table.num_rows
        for output, _ in intake.push(table, tag):
            _encode_rows(output, intake.pipeline, tag, settings, _source(block), result)
    result.quarantine.extend(intake.take_quarantined())
    return result


def _record_tables(block: pa.Table, settings: StreamSettings, result: BlockResult) -> dict[str, pa.Table]:
    """The block's records as one table per tag (``train`` or ``holdout``); undecodable messages quarantined."""
    tables: dict[str, list[pa.Table]] = {}
    texts: list[str] = []
    where = zip(block.column("topic").to_pylist(), block.column("partition").to_pylist(),
                block.column("offset").to_pylist())
    for (topic, partition, offset), value in zip(where, block.column("value").to_pylist()):
        value = value or b""
        if not value.startswith(MAGIC):
            texts.append(value.decode("utf-8", "replace"))
            continue
        try:
            envelope = decode(value)
        except EnvelopeError as error:
            _refuse(result, value, f"not an actor message ({error.reason})", f"{topic}/{partition}/{offset}")
            continue
        if envelope.kind == "chunk":
            _refuse(result, value, "a chunk of a raw message over the record limit (a streaming job reads raw "
                    "messages of one record each: send fewer records per message)", f"{topic}/{partition}/{offset}")
        elif envelope.kind != "raw":
            result.skipped += 1
        else:
            tag = HOLDOUT if envelope.meta.get("split") == HOLDOUT else "train"
            try:
                table = records_table(envelope, settings.types, settings.csv_default_type)
            except DataError as error:  # e.g. a format no reader has: this message's records, not the stream, are bad
                _refuse(result, value, f"a raw message whose records cannot be read: {error}",
                        f"{topic}/{partition}/{offset}")
                continue
            tables.setdefault(tag, []).append(table)
    if texts:
        columns = list(settings.columns) if settings.columns else None
        plain = raw_envelope(settings.sender, texts, settings.text_format, columns)
        tables.setdefault("train", []).append(records_table(plain, settings.types, settings.csv_default_type))
    return {tag: pa.concat_tables(parts, promote_options="permissive") for tag, parts in tables.items()}


def _refuse(result: BlockResult, value: bytes, reason: str, where: str) -> None:
    """One undecodable message: one bad row (its first bytes, escaped, and where it lies)."""
    preview = value[:PREVIEW_CHARS].decode("utf-8", "backslashreplace")
    result.rows_in += 1
    result.quarantine.append({"row": json.dumps({"value": preview, "source": where}, sort_keys=True),
                              "reason": reason, "step": "read"})


def _source(block: pa.Table) -> str:
    """``topic/partition/first-last`` of the block's records, per partition it holds (joined by ``,``)."""
    ranges: dict[tuple[str, int], list[int]] = {}
    where = zip(block.column("topic").to_pylist(), block.column("partition").to_pylist(),
                block.column("offset").to_pylist())
    for topic, partition, offset in where:
        bounds = ranges.setdefault((topic, partition), [offset, offset])
        bounds[0], bounds[1] = min(bounds[0], offset), max(bounds[1], offset)
    return ",".join(f"{topic}/{partition}/{low}-{high}" for (topic, partition), (low, high) in sorted(ranges.items()))


def _encode_rows(table: pa.Table, pipeline: Pipeline, tag: str, settings: StreamSettings, source: str,
                 result: BlockResult) -> None:
    """The transformed rows as ``features`` messages of at most ``rows_per_message`` rows each."""
    rows = table.num_rows
    features = np.asarray(table.column(pipeline.features).combine_chunks().flatten(), dtype=np.float32)
    features = features.reshape(rows, -1)
    has_label = pipeline.label is not None and pipeline.label in table.column_names
    labels = np.asarray(table.column(pipeline.label)) if has_label else None
    meta = {"source": source, **({"split": HOLDOUT} if tag == HOLDOUT else {})}
    key = settings.sender.encode()
    for index, begin in enumerate(range(0, rows, settings.rows_per_message)):
        end = min(begin + settings.rows_per_message, rows)
        envelope = features_envelope(settings.sender, features[begin:end],
                                     None if labels is None else labels[begin:end], meta=meta)
        envelope = dataclasses.replace(envelope, id=_message_id(settings, source, tag, index))
        data = encode(envelope)
        parts = [data] if len(data) <= settings.max_record_bytes else split(data, envelope, settings.max_record_bytes)
        result.records.extend((key, bytes(part)) for part in parts)
        result.messages += 1
        result.rows_out += end - begin


def _message_id(settings: StreamSettings, source: str, tag: str, index: int) -> str:
    """32 hex digits from the pipeline, the records' offsets and the message's place: the same on a rerun."""
    text = f"{settings.digest}/{source}/{tag}/{index}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
