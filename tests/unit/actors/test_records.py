"""Raw records as messages, and back as the table a pipeline reads (bad records kept for the quarantine)."""

import numpy as np
import pytest

from h3spark.actors import decode, encode, features_envelope, raw_envelope, records_table
from h3spark.actors._records import arrow_batch, batch_arrays, record_texts
from h3spark.errors import DataError
from h3spark.ingest import CORRUPT_COLUMN


def roundtrip(envelope):
    return decode(bytes(encode(envelope)))


def test_raw_records_travel_as_text_and_offsets_and_come_back_in_order():
    records = ['{"x": 1}', '{"x": "é"}', "", "a,b"]
    envelope = roundtrip(raw_envelope("reader", records, "json", meta={"split": "holdout"}))
    assert record_texts(envelope) == records
    assert envelope.meta == {"format": "json", "records": 4, "split": "holdout"}
    assert envelope.arrays["offsets"].tolist() == [0, 8, 19, 19, 22]


def test_csv_lines_are_parsed_by_their_types_and_bad_lines_kept_as_corrupt():
    lines = ["1.5,a,3", "2,b", "x,c,4", "4,\"d,e\",5", ",f,6"]
    table = records_table(roundtrip(raw_envelope("r", lines, "csv", ["x", "s", "label"])), {"s": "string", "label": "int64"})
    assert table.column_names == ["x", "s", "label", CORRUPT_COLUMN]
    assert table.column(CORRUPT_COLUMN).to_pylist() == [None, "2,b", "x,c,4", None, None]
    assert table.column("x").to_pylist() == [1.5, None, None, 4.0, None]  # an empty field is missing, not bad
    assert table.column("s").to_pylist() == ["a", None, "c", "d,e", "f"]
    assert table.column("label").to_pylist() == [3, None, 4, 5, 6]


def test_json_records_keep_lists_and_numbers_and_refuse_what_is_not_an_object():
    lines = ['{"features": [1, 2], "label": 1}', "[1, 2]", "{broken", '{"features": [3, 4], "label": "two"}',
             '{"features": "oops", "label": 0}']
    table = records_table(raw_envelope("r", lines, "json"), {"label": "int64"})
    corrupt = table.column(CORRUPT_COLUMN).to_pylist()
    assert corrupt == [None, "[1, 2]", "{broken", lines[3], lines[4]]
    assert table.column("features").to_pylist()[0] == [1, 2] and table.column("label").to_pylist()[0] == 1


def test_undecodable_bytes_become_the_replacement_character_for_the_quarantine():
    envelope = raw_envelope("r", ["ok"], "json")
    text = np.frombuffer(b"\xff\xfe", dtype=np.uint8)
    bad = type(envelope)("raw", "r", arrays={"text": text, "offsets": np.array([0, 2])}, meta=envelope.meta)
    assert record_texts(bad) == ["\ufffd\ufffd"]


@pytest.mark.parametrize("arrays, meta, message", [
    ({"text": np.zeros(3, np.uint8)}, {"format": "json"}, "needs a uint8 array 'text'"),
    ({"text": np.zeros(3, np.uint8), "offsets": np.array([0, 5])}, {"format": "json"}, "do not cut"),
    ({"text": np.zeros(0, np.uint8), "offsets": np.array([0])}, {"format": "xml"}, "format 'xml'"),
    ({"text": np.zeros(0, np.uint8), "offsets": np.array([0])}, {"format": "csv"}, "names no columns"),
])
def test_a_raw_message_that_does_not_hold_records_is_a_data_error(arrays, meta, message):
    from h3spark.actors import Envelope

    with pytest.raises(DataError, match=message):
        records_table(Envelope("raw", "r", arrays=arrays, meta=meta))


def test_producer_side_arguments_are_checked():
    with pytest.raises(ValueError, match="column names"):
        raw_envelope("r", ["1,2"], "csv")
    with pytest.raises(ValueError, match="record_format"):
        raw_envelope("r", ["1"], "xml")


def test_feature_batches_carry_float32_rows_and_int64_labels():
    envelope = roundtrip(features_envelope("r", np.ones((3, 2, 2)), [0, 1, 2], model_version=4))
    features, labels = batch_arrays(envelope)
    assert features.dtype == np.float32 and features.shape == (3, 2, 2) and labels.tolist() == [0, 1, 2]
    table = arrow_batch(features, labels)
    assert table.column("features").type.list_size == 4 and table.column("label").to_pylist() == [0, 1, 2]
    with pytest.raises(DataError, match="one label per row"):
        batch_arrays(features_envelope("r", np.ones((3, 2)), [0, 1]))
    with pytest.raises(DataError, match="needs an array 'features'"):
        batch_arrays(features_envelope("r", np.ones(3)))
