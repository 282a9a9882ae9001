"""The streaming job's pure parts: its config, what a task makes of a block of Kafka records (feature messages as
actors read them, bad rows counted into the quarantine), the quarantine files, and the CLI's refusals."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from h3spark.actors import (Actor, BlockResult, MemoryBus, StreamResult, StreamSettings, apply_block, decode, encode,
                            end_marker, split)
from h3spark.actors._stream import write_quarantine
from h3spark.cli import main
from h3spark.cli._stream import with_kafka_package
from h3spark.config import ActorConfig, SparkConfig, StreamConfig
from h3spark.preprocess._block import QUARANTINE_SCHEMA
from tests.unit.actors.stream_data import (BAD_LINES, batch_features, digits_csv, fitted_pipeline, kafka_block,
                                           raw_messages)
from tests.unit.actors.test_docs_snippet import doc_functions

RECORDS, COLUMNS = digits_csv()
PIPELINE = fitted_pipeline(RECORDS, COLUMNS)


def settings(**overrides) -> StreamSettings:
    return StreamSettings(**{"sender": "streamer", "pipeline_json": PIPELINE.to_json(), "text_format": "csv",
                             "columns": tuple(COLUMNS), "rows_per_message": 50, **overrides})


def stream_config(**overrides) -> StreamConfig:
    return StreamConfig.model_validate({"input": "digits.raw", "output": "digits.features",
                                        "pipeline": {"file": "pipeline.json"}, **overrides})


def features_of(result: BlockResult) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    envelopes = [decode(value) for _, value in result.records]
    assert all(envelope.kind == "features" and envelope.sender == "streamer" for envelope in envelopes)
    return (np.concatenate([envelope.arrays["features"] for envelope in envelopes]),
            np.concatenate([envelope.arrays["label"] for envelope in envelopes]), [dict(e.meta) for e in envelopes])


@pytest.mark.parametrize("overrides, message", [
    ({"output": "digits.raw"}, "the features need a topic of their own"),
    ({"pipeline": {"steps": [{"kind": "assemble", "columns": ["x"]}]}}, "applies a fitted pipeline"),
    ({"text_format": "csv"}, "plain-text CSV records need their column names"),
    ({"input": "bad topic"}, "a topic name has 1 to 200 letters"),
    ({"sender": "-x"}, "a sender has 1 to 64 letters"),
    ({"dir": "../elsewhere"}, "climbs out of the workdir"),
    ({"rows_per_message": 0}, "greater than 0"),
])
def test_a_stream_config_that_cannot_work_is_refused_with_the_fix(overrides, message):
    with pytest.raises(ValidationError, match=message):
        stream_config(**overrides)


def test_feature_messages_hold_the_rows_the_pipeline_makes_in_batch_and_bad_records_are_counted():
    good = RECORDS[:230]
    values = raw_messages(good[:200] + BAD_LINES, COLUMNS, 64) + raw_messages(good[200:], COLUMNS, 64,
                                                                            {"split": "holdout"})
    values += [b"H3AE\x09\x00 not a message", bytes(encode(end_marker("producer")))]
    result = apply_block(kafka_block(values), settings())
    features, labels, metas = features_of(result)
    expected_features, expected_labels = batch_features(PIPELINE, good, COLUMNS)
    assert np.array_equal(features, expected_features) and np.array_equal(labels, expected_labels)
    assert [meta.get("split") for meta in metas] == [None] * 4 + ["holdout"]  # 200 rows by 50, then 30 held out
    assert result.rows_in == 234 and result.rows_out == 230 and len(result.quarantine) == 4 and result.skipped == 1
    assert result.rows_in == result.rows_out + len(result.quarantine) and result.messages == 5
    assert result.reasons() == {"malformed record (wrong number of fields, broken JSON or a value of the wrong type)": 3,
                                "not an actor message (unknown_version)": 1}
    assert json.loads(result.quarantine[0]["row"])["source"] == "digits.raw/0/5"


def test_plain_text_records_are_read_as_the_configured_format():
    values = [line.encode() for line in RECORDS[:20] + ["9,9"]]
    result = apply_block(kafka_block(values), settings())
    features, labels, _ = features_of(result)
    assert np.array_equal(features, batch_features(PIPELINE, RECORDS[:20], COLUMNS)[0]) and len(labels) == 20
    assert len(result.quarantine) == 1 and result.quarantine[0]["step"] == "read"


def test_a_block_run_again_publishes_the_same_message_ids_and_other_offsets_other_ones():
    values = raw_messages(RECORDS[:100], COLUMNS, 50)
    first, again = apply_block(kafka_block(values), settings()), apply_block(kafka_block(values), settings())
    later = apply_block(kafka_block(values, first_offset=2), settings())
    ids = [decode(value).id for _, value in first.records]
    assert ids == [decode(value).id for _, value in again.records] and len(set(ids)) == 2
    assert not set(ids) & {decode(value).id for _, value in later.records}


def test_a_message_over_the_record_limit_travels_as_chunks_that_the_documented_decoder_joins():
    result = apply_block(kafka_block(raw_messages(RECORDS[:400], COLUMNS, 400)), settings(rows_per_message=400,
                                                                                        max_record_bytes=20_000))
    doc = doc_functions()
    chunks = [doc["decode_message"](value) for _, value in result.records]
    assert len(chunks) > 1 and all(header["kind"] == "chunk" for header, _ in chunks)
    header, arrays = doc["decode_message"](doc["join_chunks"](chunks))
    assert header["kind"] == "features" and result.messages == 1
    assert np.array_equal(arrays["features"], batch_features(PIPELINE, RECORDS[:400], COLUMNS)[0])


def test_a_chunk_of_a_raw_message_is_quarantined_not_guessed_at():
    big = raw_messages(RECORDS[:300], COLUMNS, 300)[0]
    chunks = [bytes(chunk) for chunk in split(big, decode(big), 10_000)]
    result = apply_block(kafka_block(chunks), settings())
    assert result.records == [] and len(result.quarantine) == len(chunks) == result.rows_in
    assert all(row["reason"].startswith("a chunk of a raw message over the record limit") for row in result.quarantine)


def test_an_actor_trains_from_the_feature_messages_unchanged():
    bus = MemoryBus()
    result = apply_block(kafka_block(raw_messages(RECORDS[:320], COLUMNS, 64)), settings(rows_per_message=64))
    for _, value in result.records:
        bus.publish("digits.features", decode(value))
    bus.publish("digits.features", end_marker("streamer"))
    config = ActorConfig.model_validate({"inputs": {"digits.features": "train"}, "training": {"batch_size": 32},
                                         "model": {"mlp": {"input_shape": [64], "classes": 10}}})
    status = Actor.from_config("learner", config, bus, workdir="/tmp", network="n").run()
    assert status["state"] == "stopped" and status["step"] == 10 and status["rows_trained"] == 320


def test_the_quarantine_files_have_the_batch_schema_and_a_rerun_replaces_its_file(tmp_path):
    folder = f"file://{tmp_path}/quarantine"
    rows = apply_block(kafka_block(raw_messages(BAD_LINES, COLUMNS, 8)), settings()).quarantine
    write_quarantine(rows, folder, "batch-00000003-part-00000.parquet", {})
    write_quarantine(rows[:1], folder, "batch-00000003-part-00000.parquet", {})
    assert sorted(path.name for path in (tmp_path / "quarantine").iterdir()) == ["batch-00000003-part-00000.parquet"]
    table = pq.read_table(tmp_path / "quarantine")
    assert table.schema == QUARANTINE_SCHEMA and table.num_rows == 1


def test_a_run_adds_up_its_micro_batches():
    result = StreamResult()
    batch = result.add([{"rows_in": 5, "rows_out": 4, "rows_bad": 1, "skipped": 0, "messages": 1,
                         "reasons": json.dumps({"bad": 1})},
                        {"rows_in": 3, "rows_out": 1, "rows_bad": 2, "skipped": 1, "messages": 1,
                         "reasons": json.dumps({"bad": 1, "worse": 1})}])
    result.add([{"rows_in": 0, "rows_out": 0, "rows_bad": 0, "skipped": 0, "messages": 0, "reasons": "{}"}])
    assert batch == {"rows_in": 8, "rows_out": 5, "rows_bad": 3, "skipped": 1, "messages": 2}
    assert (result.batches, result.rows_in, result.rows_bad, result.reasons) == (2, 8, 3, {"bad": 2, "worse": 1})


def test_the_kafka_package_is_added_to_the_packages_a_config_names(monkeypatch):
    import h3spark.services

    monkeypatch.setattr(h3spark.services, "ensure_spark_kafka_package", lambda: "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0")
    config = with_kafka_package(SparkConfig(conf={"spark.jars.packages": "a:b:1"}))
    assert config.conf["spark.jars.packages"] == "a:b:1,org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"
    named = SparkConfig(conf={"spark.jars.packages": "org.apache.spark:spark-sql-kafka-0-10_2.13:4.1.0"})
    assert with_kafka_package(named) is named


def test_the_cli_refuses_a_config_without_a_stream_section_a_bad_one_and_bad_limits(tmp_path, capsys):
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: plain\n")
    assert main(["stream", str(plain), "--workdir", str(tmp_path)]) == 2
    assert "the config has no stream: section" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstream:\n  input: t\n  output: t\n  pipeline: {file: p.json}\n")
    assert main(["stream", str(bad), "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "stream.output: the features need a topic of their own" in err and "Traceback" not in err
    assert main(["stream", str(plain), "--max-batches", "0", "--workdir", str(tmp_path)]) == 2
    assert "--max-batches must be greater than 0. Got 0 instead." in capsys.readouterr().err


class _Query:
    """A query that ends after ``batches_until_end`` looks (never when None), adding a micro-batch to
    ``result`` at each look (what foreachBatch does)."""

    def __init__(self, result: StreamResult, batches_until_end: int | None):
        self.result, self.left = result, batches_until_end

    def awaitTermination(self, timeout_s):  # noqa: N802 - pyspark's name
        self.result.batches += 1
        if self.left is not None:
            self.left -= 1
        return self.left == 0


@pytest.mark.parametrize("until_end, max_batches, timeout_s, stop, expected", [
    (3, None, None, False, "drained"),
    (None, 2, None, False, "max_batches"),
    (None, None, 0.0, False, "timeout"),
    (None, None, None, True, "stopped"),
])
def test_a_bounded_run_says_what_stopped_it(tmp_path, until_end, max_batches, timeout_s, stop, expected):
    from h3spark.actors import StreamJob
    from h3spark.config import H3SparkConfig

    (tmp_path / "pipeline.json").write_text(PIPELINE.to_json())
    config = H3SparkConfig.model_validate({"name": "s", "stream": stream_config().model_dump()})
    job = StreamJob(config, str(tmp_path), spark=None)
    if stop:
        job.stop_requested.set()
    assert job._wait(_Query(job.result, until_end), 0.0, max_batches, timeout_s) == expected
    assert job.result.quarantine == f"file://{tmp_path}/streams/s/quarantine"


def test_a_raw_message_whose_records_no_reader_takes_is_quarantined_and_the_others_go_on():
    good, other = raw_messages(RECORDS[:100], COLUMNS, 50)[:2]
    envelope = decode(other)
    envelope.meta["format"] = "xml"
    result = apply_block(kafka_block([good, bytes(encode(envelope))]), settings())
    assert len(result.quarantine) == 1 and result.records
    assert result.quarantine[0]["reason"].startswith("a raw message whose records cannot be read")
    assert "xml" in result.quarantine[0]["reason"]
