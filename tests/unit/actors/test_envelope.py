"""The envelope: a round trip keeps every field and array; the decoder refuses what does not fit, by reason."""

import json
import os
import struct
import uuid

import numpy as np
import pytest

from h3spark.actors import KINDS, SCHEMA_VERSION, Envelope, decode, encode, measure_codec, new_message_id
from h3spark.errors import DataError, EnvelopeError


def header_of(data) -> dict:
    length = struct.unpack_from("<I", data, 8)[0]
    return json.loads(bytes(data[12:12 + length]))


def rebuilt(data, **changes) -> bytearray:
    """``data`` with its header's fields changed (the payload kept where it was)."""
    header = header_of(data)
    start = (12 + struct.unpack_from("<I", data, 8)[0] + 63) // 64 * 64
    header.update(changes)
    text = json.dumps(header).encode()
    new_start = (12 + len(text) + 63) // 64 * 64
    return bytearray(struct.pack("<4sHHI", b"H3AE", 1, 0, len(text)) + text + bytes(new_start - 12 - len(text))
                     + bytes(data[start:]))


def test_a_round_trip_keeps_every_field_and_array_of_every_dtype():
    rng = np.random.default_rng(0)
    arrays = {"f32": rng.standard_normal((256, 784)).astype(np.float32), "f16": np.arange(5, dtype=np.float16),
              "i64": np.array([[-1, 2**40]]), "u8": np.arange(7, dtype=np.uint8), "bool": np.array([True, False]),
              "scalar": np.float64(3.5), "empty": np.zeros((0, 3), np.int32), "c": np.array([1 + 2j], np.complex64),
              "strided": np.arange(20.0).reshape(4, 5)[:, ::2], "big_endian": np.arange(3, dtype=">i4")}
    sent = Envelope("predictions", "teacher", model_version=120, computed_with=118, arrays=arrays,
                    meta={"temperature": 4.0, "layers": ["dense0"]})
    data = encode(sent)
    got = decode(data)
    base = np.frombuffer(data, np.uint8).ctypes.data
    assert (got.kind, got.sender, got.model_version, got.computed_with, got.id, got.created_ns, got.meta) == \
        (sent.kind, sent.sender, 120, 118, sent.id, sent.created_ns, {"temperature": 4.0, "layers": ["dense0"]})
    assert got.schema_version == SCHEMA_VERSION == 1 and list(got.arrays) == list(arrays)
    for name, array in arrays.items():
        assert got.arrays[name].shape == np.shape(array) and np.array_equal(got.arrays[name], array), name
        assert got.arrays[name].dtype.byteorder in "<|=" and (got.arrays[name].ctypes.data - base) % 64 == 0
    frozen = decode(bytes(data)).arrays["f32"]
    with pytest.raises(ValueError, match="read-only"):
        frozen[0, 0] = 1.0  # views of the message, not copies


def test_each_kind_encodes_and_ids_and_times_are_filled_in():
    for kind in KINDS:
        computed_with = 3 if kind in ("predictions", "gradients") else None
        envelope = Envelope(kind, "a", 4, computed_with)
        assert decode(encode(envelope)).kind == kind
    first, second = Envelope("control", "a"), Envelope("control", "a")
    assert first.id != second.id and len(first.id) == 32 and first.created_ns > 0 and first.model_version is None


def test_the_wire_overhead_of_a_batch_is_within_five_percent():
    measured = measure_codec((256, 784), repeats=2)
    assert measured["raw_bytes"] == 256 * 784 * 4
    assert measured["wire_bytes"] - measured["raw_bytes"] < 512 and measured["wire_overhead"] <= 1.05
    assert measured["encode_gb_per_s"] > 0 and measured["decode_gb_per_s"] > 0


@pytest.mark.parametrize("envelope, match", [
    (Envelope("weights", "a"), "unknown_kind.*'weights' is not one of raw, features"),
    (Envelope("predictions", "a", 3), "computed_with of a predictions message must be an integer >= 0. Got None"),
    (Envelope("gradients", "a", 3, -1), "computed_with .* Got -1"),
    (Envelope("control", ""), "sender must be a non-empty string"),
    (Envelope("control", "a", model_version=True), "model_version .* integer >= 0 or null. Got True"),
    (Envelope("control", "a", id="XYZ"), "id must be 32 lowercase hex digits"),
    (Envelope("raw", "a", arrays={"x": np.array(["text"], dtype=object)}), "bad_array.*dtype object"),
    (Envelope("raw", "a", arrays={"x": np.array(["text"])}), "bad_array.*dtype <U4"),
    (Envelope("raw", "a", meta={"loss": float("nan")}), "meta must be plain JSON"),
    (Envelope("raw", "a", meta={"model": object()}), "meta must be plain JSON"),
])
def test_encoding_refuses_what_the_format_cannot_carry(envelope, match):
    with pytest.raises(EnvelopeError, match=match):
        encode(envelope)


def valid() -> bytearray:
    return encode(Envelope("features", "reader", 7, arrays={"x": np.arange(12, dtype=np.float32).reshape(3, 4)}))


def with_prefix(data, magic=b"H3AE", version=1, flags=0, length=None) -> bytearray:
    data = bytearray(data)
    struct.pack_into("<4sHHI", data, 0, magic, version, flags, struct.unpack_from("<I", data, 8)[0] if length is None
                     else length)
    return data


def with_entry(**changes) -> bytearray:
    data = valid()
    entry = {**header_of(data)["arrays"][0], **changes}
    return rebuilt(data, arrays=[entry])


@pytest.mark.parametrize("data, reason, match", [
    (b"", "malformed", "0 bytes, shorter than the 12-byte prefix"),
    (with_prefix(valid(), magic=b"PK\x03\x04"), "not_an_envelope", "starts with b'PK"),
    (with_prefix(valid(), version=2), "unknown_version", "schema version 2; this decoder reads version 1"),
    (with_prefix(valid(), flags=1), "malformed", "flags 1"),
    (with_prefix(valid(), length=2**31), "malformed", "header of 2147483648 bytes"),
    (with_prefix(b"H3AE" + bytes(8) + b"\xff\xfe" + bytes(62), length=2), "malformed", "not UTF-8 JSON"),
    (rebuilt(valid(), extra=1), "malformed", "exactly the keys"),
    (rebuilt(valid(), kind="pickle"), "unknown_kind", "'pickle'"),
    (rebuilt(valid(), created_ns="yesterday"), "malformed", "created_ns"),
    (rebuilt(valid(), meta=[1]), "malformed", "meta must be a JSON object"),
    (with_entry(dtype="|O"), "bad_array", "a dtype of"),
    (with_entry(dtype="<U4"), "bad_array", "a dtype of"),
    (with_entry(shape=[3, -4]), "bad_array", "shape"),
    (with_entry(shape=[3, 5]), "bad_array", "does not fit"),
    (with_entry(offset=32), "bad_array", "does not fit"),
    (with_entry(offset="0"), "bad_array", "does not fit"),
    (with_entry(offset=-64), "bad_array", "does not fit"),
    (with_entry(name=7), "bad_array", "needs a new name"),
    (valid() + b"\x00", "malformed", "1 bytes after the last array"),
    (valid()[:-1], "bad_array", "does not fit"),
])
def test_decoding_refuses_malformed_messages_with_a_reason(data, reason, match):
    with pytest.raises(EnvelopeError, match=match) as refused:
        decode(data)
    assert refused.value.reason == reason and isinstance(refused.value, DataError)
    assert str(refused.value).startswith(f"refused an actor message ({reason}): ")


def test_decoding_refuses_a_message_over_its_limit_before_reading_it():
    data = valid()
    with pytest.raises(EnvelopeError, match=f"oversized.*{len(data)} bytes, over the limit of 100 bytes") as refused:
        decode(data, max_bytes=100)
    assert refused.value.reason == "oversized"
    assert decode(data, max_bytes=len(data)).arrays["x"].shape == (3, 4)


def test_two_arrays_that_overlap_are_refused():
    data = encode(Envelope("raw", "a", arrays={"x": np.zeros(16, np.uint8), "y": np.zeros(16, np.uint8)}))
    entries = header_of(data)["arrays"]
    entries[1]["offset"] = 0
    with pytest.raises(EnvelopeError, match="'y' at offset 0"):
        decode(rebuilt(data, arrays=entries))


def test_the_decoder_reads_views_of_any_buffer_and_keeps_them_valid():
    data = valid()
    got = decode(memoryview(np.frombuffer(bytes(data), np.uint8)))
    del data
    assert got.arrays["x"].sum() == 66


def test_message_ids_have_the_uuid4_layout_and_a_forked_child_draws_its_own():
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(uuid.UUID(i).version == 4 and uuid.UUID(i).hex == i for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, new_message_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 32).decode() != new_message_id()
