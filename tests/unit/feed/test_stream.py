"""StreamBatcher: in-memory streams of Arrow batches and JSON records."""

import json

import numpy as np
import pyarrow as pa
import pytest

from h3spark.errors import ConfigError, DataError
from h3spark.feed import BatchSource, StreamBatcher


def feature_values(ids, width):
    return (ids[:, None] + 0.5 * np.arange(width)[None, :]).astype(np.float32)


def tensor_column(values, encoding):
    if encoding == "binary":
        return pa.array([row.tobytes() for row in values], type=pa.binary(4 * values.shape[1]))
    return pa.array(values.tolist(), type=pa.list_(pa.float32()))


def arrow_batch(ids, encoding="list", width=3):
    return pa.record_batch([tensor_column(feature_values(ids, width), encoding), pa.array(ids.astype(np.int64))],
                           names=["features", "label"])


def json_record(i, width=3):
    return {"features": feature_values(np.array([i]), width)[0].tolist(), "label": i}


@pytest.mark.parametrize("encoding", ["list", "binary"])
def test_mixed_stream_gives_fixed_size_batches_in_order(encoding):
    items = [arrow_batch(np.arange(0, 5), encoding), json_record(5), json.dumps(json_record(6)),
             json.dumps(json_record(7)).encode(), arrow_batch(np.arange(8, 19), encoding)]
    stream = StreamBatcher(items, batch_size=4, feature_shape=(3,))
    assert isinstance(stream, BatchSource)
    batches = list(stream)
    assert [len(f) for f, _ in batches] == [4, 4, 4, 4, 3]
    features = np.concatenate([f for f, _ in batches])
    np.testing.assert_array_equal(np.concatenate([l for _, l in batches]), np.arange(19))
    np.testing.assert_array_equal(features, feature_values(np.arange(19), 3))


def test_drop_last_and_no_labels():
    stream = StreamBatcher([json_record(i) for i in range(10)], batch_size=4, feature_shape=3, label=None, drop_last=True)
    batches = list(stream)
    assert [len(f) for f, _ in batches] == [4, 4] and batches[0].labels is None and not stream.has_labels


def test_record_with_wrong_shape_names_its_position_and_both_shapes():
    items = [json_record(0), json_record(1, width=5)]
    with pytest.raises(DataError, match=r"stream record 1: field 'features' has shape \(5,\), but the stream expects \(3,\)"):
        list(StreamBatcher(items, batch_size=2, feature_shape=(3,)))
    with pytest.raises(DataError, match=r"stream item 0: .*shape"):
        list(StreamBatcher([arrow_batch(np.arange(3), width=4)], batch_size=2, feature_shape=(3,)))


def test_bad_records():
    with pytest.raises(DataError, match="stream record 1 is not valid JSON"):
        list(StreamBatcher([json_record(0), "{oops"], batch_size=2, feature_shape=(3,)))
    with pytest.raises(DataError, match="must be a JSON object.*Got int instead"):
        list(StreamBatcher([json_record(0), 5], batch_size=2, feature_shape=(3,)))
    with pytest.raises(DataError, match="has no field 'label'"):
        list(StreamBatcher([{"features": [1, 2, 3]}], batch_size=2, feature_shape=(3,)))
    with pytest.raises(DataError, match="no column 'features'"):
        list(StreamBatcher([pa.record_batch([pa.array([1])], names=["x"])], batch_size=2, feature_shape=(3,)))


def test_bad_parameters():
    with pytest.raises(ConfigError, match="'batch_size' parameter of StreamBatcher .* Got 0 instead"):
        StreamBatcher([], batch_size=0, feature_shape=(3,))
    with pytest.raises(ConfigError, match="'feature_shape'"):
        StreamBatcher([], batch_size=2, feature_shape=(0,))
