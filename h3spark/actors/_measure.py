"""The envelope's speed and size, as benchmarks/actors.py reports them (``codec_gb_per_s``, ``wire_overhead``)."""

from __future__ import annotations

import time

import numpy as np

from h3spark.actors._envelope import Envelope, decode, encode


def measure_codec(shape: tuple[int, ...] = (256, 784), dtype: str = "float32", repeats: int = 200,
                  seed: int = 0) -> dict:
    """Encode and decode one array of ``shape`` ``repeats`` times; GB/s of raw array bytes and the size ratio.

        >>> measure_codec()["wire_overhead"]   # the encoded message over the raw float32 bytes
        1.0004...

    Decoding makes views of the message (no copy), so its speed hardly depends on the size;
    ``codec_gb_per_s`` counts both directions: raw bytes / (encode time + decode time).
    """
    array = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    envelope = Envelope("features", "measure", model_version=0, arrays={"x": array})
    data = encode(envelope)  # one round first: the allocator's first touch is not the codec's speed
    started = time.perf_counter()
    for _ in range(repeats):
        data = encode(envelope)
    encoded = time.perf_counter()
    for _ in range(repeats):
        decoded = decode(data)
    finished = time.perf_counter()
    if not np.array_equal(decoded.arrays["x"], array):
        raise AssertionError("the envelope did not give back the array it was given")
    total = array.nbytes * repeats / 1e9
    return {"raw_bytes": array.nbytes, "wire_bytes": len(data), "wire_overhead": len(data) / array.nbytes,
            "encode_gb_per_s": total / (encoded - started), "decode_gb_per_s": total / (finished - encoded),
            "codec_gb_per_s": total / (finished - started)}
