"""Streaming ingest: a producer writes raw records (CSV lines or JSON) to a topic, as ``raw`` messages.

    >>> records, columns = source_records(ProducerSourceConfig(bundled="digits"), "json", workdir)
    >>> produce(transport, "digits.raw", records, "json", epochs=3, holdout_fraction=0.2)
    ProduceResult(records=4311, holdout_records=360, messages=75, ...)

Each epoch sends the training records (all but the held-out part) in a seeded shuffle; then the
held-out records go once, marked ``split: holdout`` (actors evaluate them, never train on them);
then an end marker. Records travel as they are: the actors apply their own pipelines (bad
records go to their quarantines).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from h3spark.actors._control import end_marker
from h3spark.actors._records import raw_envelope
from h3spark.actors._transport import Transport
from h3spark.config import ProducerConfig
from h3spark.config._actors import ProducerSourceConfig
from h3spark.errors import DataError
from h3spark.ingest import load_bundled
from h3spark.storage import filesystem_for, resolve_uri

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProduceResult:
    records: int
    holdout_records: int
    messages: int
    seconds: float
    stopped_early: bool = False


def source_records(source: ProducerSourceConfig, record_format: str, workdir: str) -> tuple[list[str], list[str] | None]:
    """The records of ``source`` as text (one CSV line or JSON object each) and the CSV column names."""
    if source.bundled is not None:
        return _bundled_records(source.bundled, record_format)
    uri = resolve_uri(source.path, workdir)
    lines = [line for line in filesystem_for(uri).read_bytes(uri).decode("utf-8", "replace").splitlines() if line]
    if record_format == "json":
        return lines, None
    if not lines:
        raise DataError(f"{uri} is empty; a CSV source needs a header line and records.")
    return lines[1:], next(csv.reader([lines[0]]))


def _bundled_records(name: str, record_format: str) -> tuple[list[str], list[str] | None]:
    table = load_bundled(name)
    features = np.asarray(table.column("features").combine_chunks().flatten()).reshape(table.num_rows, -1)
    labels = table.column("label").to_numpy()
    if record_format == "json":
        return [json.dumps({"features": row.tolist(), "label": int(label)}) for row, label in zip(features, labels)], None
    names = (table.schema.metadata or {}).get(b"h3spark.feature_names", b"").decode().split(",")
    columns = [*(names if len(names) == features.shape[1] else [f"f{i}" for i in range(features.shape[1])]), "label"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row, label in zip(features, labels):
        writer.writerow([*(f"{value:g}" for value in row), int(label)])
    return out.getvalue().splitlines(), columns


def produce(transport: Transport, topic: str, records: list[str], record_format: str, columns: list[str] | None = None,
            *, sender: str = "producer", records_per_message: int = 64, epochs: int = 1, holdout_fraction: float = 0.0,
            seed: int = 0, rate_per_s: float | None = None, end: bool = True,
            stop: threading.Event | None = None, train_range: tuple[int, int] | None = None) -> ProduceResult:
    """Send ``records`` to ``topic``: ``epochs`` shuffled passes, the held-out part once, an end marker.
    ``train_range`` (start, stop): send only those training records (the same held-out part whatever the range)."""
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    held = int(round(len(records) * holdout_fraction))
    holdout, train = order[:held], order[held:]
    if train_range is not None:
        train = train[train_range[0]:train_range[1]]
    sent = {"records": 0, "messages": 0}

    def send(indices: np.ndarray, meta: dict) -> bool:
        for begin in range(0, len(indices), records_per_message):
            if stop is not None and stop.is_set():
                return False
            part = [records[index] for index in indices[begin:begin + records_per_message]]
            transport.publish(topic, raw_envelope(sender, part, record_format, columns, meta))
            sent["records"] += len(part)
            sent["messages"] += 1
            _pace(rate_per_s, sent["records"], started)
        return True

    finished = all(send(rng.permutation(train), {"epoch": epoch}) for epoch in range(epochs))
    finished = finished and send(holdout, {"split": "holdout"})
    if end and finished:
        transport.publish(topic, end_marker(sender))
    transport.flush()
    result = ProduceResult(sent["records"] - (len(holdout) if finished else 0), len(holdout) if finished else 0,
                           sent["messages"], time.monotonic() - started, not finished)
    logger.info("produced %d records (%d held out) in %d messages to %s producer=%s", result.records,
                result.holdout_records, result.messages, topic, sender)
    return result


def _pace(rate_per_s: float | None, records: int, started: float) -> None:
    if rate_per_s:
        ahead = records / rate_per_s - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def run_producer(name: str, config: ProducerConfig, transport: Transport, workdir: str,
                 stop: threading.Event | None = None) -> ProduceResult:
    """Run the producer ``config`` describes."""
    records, columns = source_records(config.source, config.format, workdir)
    return produce(transport, config.topic, records, config.format, columns, sender=name,
                   records_per_message=config.records_per_message, epochs=config.epochs,
                   holdout_fraction=config.holdout_fraction, seed=config.seed, rate_per_s=config.rate_per_s,
                   end=config.end, stop=stop, train_range=config.train_range)
