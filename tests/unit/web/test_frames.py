"""The bridge's binary frames and text messages: what is read back, and what is refused."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.web import DATA, EXAMPLES, GRADIENTS, HEADER, WEIGHTS, FrameError, Layout, decode_frame, encode_frame, \
    parse_message
from h3spark.web._frames import error_message, kind_name


def test_a_weights_frame_is_16_bytes_of_header_and_the_raw_float32_values():
    values = np.arange(10, dtype=np.float32) / 3
    data = encode_frame(WEIGHTS, values, version=7)
    assert len(data) == HEADER.size + 4 * 10 and data[:4] == b"H3WB" and data[HEADER.size:] == values.tobytes()
    frame = decode_frame(data, parameters=10)
    assert (frame.kind, frame.version, frame.steps, frame.rows) == (WEIGHTS, 7, 0, 0)
    assert np.array_equal(frame.values, values)


def test_gradients_carry_the_version_they_were_computed_on_and_how_many_steps_they_sum():
    frame = decode_frame(encode_frame(GRADIENTS, np.ones(4), version=2**32 - 1, steps=3, rows=48), parameters=4)
    assert (frame.version, frame.steps, frame.rows) == (2**32 - 1, 3, 48)


def test_rows_travel_as_float32_features_then_int32_labels():
    features = np.arange(12, dtype=np.float32).reshape(3, 4)
    frame = decode_frame(encode_frame(DATA, features, rows=3, labels=np.array([1, 0, 9])), parameters=0, features=4)
    assert np.array_equal(frame.values, features) and frame.labels.tolist() == [1, 0, 9]


@pytest.mark.parametrize("data, words", [
    (b"H3W", "16-byte header"),
    (b"XXXX" + bytes(12) + bytes(16), "starts with b'H3WB'"),
    (encode_frame(WEIGHTS, np.ones(3)), "holds 4 float32 values"),
    (encode_frame(GRADIENTS, np.array([1.0, np.nan, 0, np.inf])), "2 values that are NaN or infinite"),
    (encode_frame(EXAMPLES, np.ones(8), rows=3, labels=np.zeros(2)), "a examples frame of 3 rows"),
    (encode_frame(EXAMPLES, np.ones(0), rows=0, labels=np.zeros(0)), "of 0 rows (1 to"),
    (HEADER.pack(b"H3WB", 9, 1, 0, 0, 0), "unknown frame kind 9"),
    (HEADER.pack(b"H3WB", 1, 2, 0, 0, 0), "format 2"),
], ids=["short", "magic", "length", "nan", "rows", "no rows", "kind", "format"])
def test_a_bad_frame_is_refused_saying_why(data, words):
    with pytest.raises(FrameError) as refused:
        decode_frame(data, parameters=4, features=4)
    assert refused.value.code == "bad_frame" and words in str(refused.value)


def test_encode_refuses_what_the_header_cannot_hold():
    with pytest.raises(ValueError, match="steps < 2"):
        encode_frame(GRADIENTS, np.ones(1), steps=2**16)
    with pytest.raises(ValueError, match="kind"):
        encode_frame(5, np.ones(1))


def test_a_layout_flattens_weights_in_spec_order_and_views_them_back():
    layout = Layout({"hidden0.weight": (3, 2), "hidden0.bias": (3,), "logits.weight": (2, 3)})
    weights = {"hidden0.weight": np.arange(6).reshape(3, 2), "hidden0.bias": np.array([7, 8, 9]),
               "logits.weight": np.arange(10, 16).reshape(2, 3)}
    flat = layout.flatten(weights)
    assert layout.size == 15 and flat.dtype == np.float32
    assert flat.tolist() == [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    back = layout.unflatten(flat)
    assert all(np.array_equal(back[name], weights[name]) for name in weights)
    assert layout.to_json()[1] == {"name": "hidden0.bias", "shape": [3], "offset": 6}


@pytest.mark.parametrize("text, code", [("{", "bad_message"), ("[1]", "bad_message"), ('{"kind": 1}', "bad_message"),
                                        ('{"type": 3}', "bad_message"), ("x" * 101, "too_large")])
def test_a_text_frame_is_a_json_object_with_a_type(text, code):
    with pytest.raises(FrameError) as refused:
        parse_message(text, max_bytes=100)
    assert refused.value.code == code
    assert parse_message('{"type": "hello"}', 100) == {"type": "hello"}


def test_error_frames_and_kind_names_for_messages():
    assert error_message("x", "why", "hello") == '{"type": "error", "code": "x", "message": "why", "ref": "hello"}'
    assert kind_name(encode_frame(GRADIENTS, np.ones(1))) == "gradients" and kind_name(b"nope") == "binary"
