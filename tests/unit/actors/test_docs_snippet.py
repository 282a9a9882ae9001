"""docs/actors.md describes the envelope completely: its decode snippet, run from the page with numpy and
the standard library alone, reads what h3spark encodes, chunked messages included."""

import random
import re
from pathlib import Path

import numpy as np
import pytest

from h3spark.actors import Envelope, encode, split

DOC = Path(__file__).resolve().parents[3] / "docs" / "actors.md"


def snippet(name: str) -> str:
    """The Python block that follows ``<!-- snippet: NAME -->`` in docs/actors.md."""
    found = re.search(rf"<!-- snippet: {name} -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"docs/actors.md has no block marked <!-- snippet: {name} -->"
    return found.group(1)


def doc_functions() -> dict:
    code = snippet("decode")
    assert not re.search(r"^\s*(import|from) (?!(json|struct|zlib|numpy)\b)", code, re.M)  # numpy and stdlib only
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_the_documented_decoder_reads_an_encoded_message():
    arrays = {"probabilities": np.random.default_rng(0).random((256, 10)).astype(np.float32),
              "labels": np.arange(256, dtype=np.int64), "mask": np.array([True, False]), "scale": np.float64(2.0)}
    sent = Envelope("predictions", "teacher", model_version=40, computed_with=38, arrays=arrays, meta={"T": 4.0})
    header, got = doc_functions()["decode_message"](bytes(encode(sent)))
    assert header == {"kind": "predictions", "sender": "teacher", "id": sent.id, "created_ns": sent.created_ns,
                      "model_version": 40, "computed_with": 38, "meta": {"T": 4.0}, "arrays": header["arrays"]}
    assert list(got) == list(arrays)
    for name, array in arrays.items():
        assert got[name].dtype == np.asarray(array).dtype and np.array_equal(got[name], array)


def test_the_documented_decoder_puts_chunks_together_in_any_order():
    functions = doc_functions()
    weights = np.arange(100_000, dtype=np.float32)
    sent = Envelope("parameters", "teacher", model_version=3, arrays={"dense0.weight": weights})
    chunks = [functions["decode_message"](bytes(chunk)) for chunk in split(encode(sent), sent, 20_000)]
    random.Random(0).shuffle(chunks)
    assert len(chunks) > 10 and {header["kind"] for header, _ in chunks} == {"chunk"}
    header, got = functions["decode_message"](functions["join_chunks"](chunks))
    assert header["id"] == sent.id and np.array_equal(got["dense0.weight"], weights)
    header, arrays = chunks[0]
    arrays["bytes"] = arrays["bytes"].copy()
    arrays["bytes"][0] ^= 1
    with pytest.raises(ValueError, match="do not match its checksum"):
        functions["join_chunks"](chunks)


def test_the_documented_decoder_refuses_another_version():
    data = bytearray(encode(Envelope("control", "lead")))
    data[4] = 2
    with pytest.raises(ValueError, match="not an h3spark envelope of version 1: b'H3AE', 2, 0"):
        doc_functions()["decode_message"](bytes(data))
