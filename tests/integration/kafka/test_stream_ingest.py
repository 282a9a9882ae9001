"""Streaming ingest on the broker: ``h3spark stream CONFIG --until-drained`` (Spark Structured Streaming with Spark's
Kafka package, local[2]) applies a fitted pipeline to raw digits CSV records with a few bad lines; the features
topic holds the rows the pipeline makes in batch, as features messages that an actor trains from unchanged; the bad
records are counted into the quarantine; run again from its checkpoint, the job processes only the new records."""

import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from h3spark.actors import Actor, KafkaTransport, end_marker, raw_envelope
from h3spark.config import ActorConfig
from tests.unit.actors.stream_data import BAD_LINES, batch_features, digits_csv, fitted_pipeline
from tests.unit.actors.test_docs_snippet import doc_functions

ROOT = Path(__file__).resolve().parents[3]
RUN_TIMEOUT_S = 600  # one run took 205 s at load 16 on 2 cores (JVM, Ivy, the first Python worker)
MALFORMED = "malformed record (wrong number of fields, broken JSON or a value of the wrong type)"


def publish(bootstrap: str, topic: str, records: list[str], columns: list[str], meta: dict | None = None) -> None:
    with KafkaTransport(bootstrap) as transport:
        for begin in range(0, len(records), 64):
            transport.publish(topic, raw_envelope("producer", records[begin:begin + 64], "csv", columns, meta))
        transport.flush()


def run_stream(config: Path, workdir: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "stream", str(config), "--until-drained",
                           "--workdir", str(workdir)], cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def read_features(bootstrap: str, topic: str) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(headers, features, labels) of the topic's features messages, decoded by docs/actors.md alone."""
    decode_message = doc_functions()["decode_message"]
    with KafkaTransport(bootstrap) as transport:
        messages = [decode_message(record.value) for record in transport.read(topic)]
    features = [(header, arrays) for header, arrays in messages if header["kind"] == "features"]
    return ([header for header, _ in features], np.concatenate([arrays["features"] for _, arrays in features]),
            np.concatenate([arrays["label"] for _, arrays in features]))


def rows(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The rows as one matrix in a fixed order (micro-batches may interleave the messages' order)."""
    table = np.column_stack([features, labels.astype(np.float32)])
    return table[np.lexsort(table.T[::-1])]


@pytest.mark.timeout(3 * RUN_TIMEOUT_S)
def test_a_streaming_job_publishes_the_pipelines_rows_quarantines_bad_records_and_reads_on_from_its_checkpoint(
        tmp_path, kafka_bootstrap):
    name = f"stream-{uuid.uuid4().hex[:8]}"
    raw, out = f"{name}.raw", f"{name}.features"
    records, columns = digits_csv()
    pipeline = fitted_pipeline(records, columns)
    (tmp_path / "pipeline.json").write_text(pipeline.to_json())
    config = tmp_path / "stream.yaml"
    config.write_text(yaml.safe_dump({"name": name, "spark": {"master": "local[2]", "conf": {
        "spark.ui.enabled": False, "spark.sql.shuffle.partitions": 2}}, "stream": {
        "bootstrap_servers": kafka_bootstrap, "input": raw, "output": out, "pipeline": {"file": "pipeline.json"},
        "text_format": "csv", "columns": columns, "rows_per_message": 100, "end_marker": True}}))
    train, holdout = records[:500], records[500:564]
    publish(kafka_bootstrap, raw, train[:250] + BAD_LINES + train[250:], columns)
    publish(kafka_bootstrap, raw, holdout, columns, {"split": "holdout"})
    with KafkaTransport(kafka_bootstrap) as transport:
        transport.publish(raw, end_marker("producer"))

    stdout = run_stream(config, tmp_path)
    assert "batch 0: " in stdout and "rows quarantined  3 (3 " + MALFORMED + ")" in stdout, stdout
    assert "feature rows out  564 in " in stdout and "messages skipped  1" in stdout, stdout
    headers, features, labels = read_features(kafka_bootstrap, out)
    assert np.array_equal(rows(features, labels), rows(*batch_features(pipeline, train + holdout, columns)))
    assert sum(header["meta"].get("split") == "holdout" for header in headers) == 1 and len(headers) == 6
    quarantine = pq.read_table(tmp_path / "streams" / name / "quarantine").to_pylist()
    assert len(quarantine) == 3 and {row["reason"] for row in quarantine} == {MALFORMED}

    learner = ActorConfig.model_validate({"inputs": {out: "train"}, "training": {"batch_size": 50},
                                          "model": {"mlp": {"input_shape": [64], "classes": 10}}})
    with KafkaTransport(kafka_bootstrap) as transport:               # an actor trains from the topic unchanged
        status = Actor.from_config("learner", learner, transport, workdir=str(tmp_path), network=name).run()
    assert status["state"] == "stopped" and status["rows_trained"] == 500 and status["evaluated"]["rows"] == 64

    more = records[564:700]
    publish(kafka_bootstrap, raw, more, columns)
    stdout = run_stream(config, tmp_path)                              # the same checkpoint: only the new records
    assert "rows in           136" in stdout and "rows quarantined  0 (none)" in stdout, stdout
    headers, features, labels = read_features(kafka_bootstrap, out)
    expected = batch_features(pipeline, train + holdout + more, columns)
    assert len(headers) == 6 + 2 and np.array_equal(rows(features, labels), rows(*expected))
