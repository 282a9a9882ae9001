"""Chunks: any order, repeats ignored, bounded memory, a timeout, and refusals by reason."""

import random

import numpy as np
import pytest

from h3spark.actors import Envelope, Reassembler, decode, encode, split
from h3spark.actors._chunks import CHUNK_HEADROOM, chunk_info
from h3spark.errors import EnvelopeError


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def chunks_of(envelope, record_bytes=3 * CHUNK_HEADROOM):
    data = encode(envelope)
    return data, [decode(bytes(chunk)) for chunk in split(data, envelope, record_bytes)]


def add(reassembler, chunk, offset=0, topic="t", partition=0):
    return reassembler.add(chunk, chunk_info(chunk), topic, partition, offset)


def message(size=50_000, seed=0):
    weights = np.random.default_rng(seed).integers(0, 255, size, dtype=np.uint8)
    return Envelope("parameters", "teacher", model_version=9, arrays={"dense0.weight": weights})


def test_chunks_put_together_in_any_order_with_repeats_give_the_message_back():
    envelope = message()
    data, chunks = chunks_of(envelope)
    assert len(chunks) > 5 and all(len(encode(chunk)) <= 3 * CHUNK_HEADROOM for chunk in chunks)
    shuffled = chunks + chunks[2:4]
    random.Random(1).shuffle(shuffled)
    reassembler, results = Reassembler(), []
    for offset, chunk in enumerate(shuffled):
        results.append(add(reassembler, chunk, offset))
    done = [result for result in results if result is not None]
    assert len(done) == 1 and bytes(done[0][0]) == bytes(data) and reassembler.pending_bytes == 0
    got = decode(done[0][0])
    assert got.id == envelope.id and np.array_equal(got.arrays["dense0.weight"], envelope.arrays["dense0.weight"])
    assert done[0][1] == min(o for o, c in enumerate(shuffled) if c.meta["index"] == shuffled[0].meta["index"])


def test_the_low_water_mark_is_the_first_chunk_of_an_incomplete_message_until_it_completes():
    _, chunks = chunks_of(message())
    reassembler = Reassembler()
    add(reassembler, chunks[0], offset=10)
    add(reassembler, chunks[1], offset=11, partition=1)
    assert reassembler.low_water("t", 0) == 10 and reassembler.low_water("t", 1) is None
    for offset, chunk in enumerate(chunks[1:], start=12):
        add(reassembler, chunk, offset)
    assert reassembler.low_water("t", 0) is None


@pytest.mark.parametrize("meta, match", [
    ({"index": 99}, "chunk 99 of"),
    ({"offset": 10**9}, "bytes at offset 1000000000"),
    ({"count": "2"}, "integer fields"),
    ({"of": ["x"]}, "message id 'of'"),
    ({"crc32": 2**32}, "refused chunk"),
])
def test_a_chunk_with_wrong_meta_is_refused(meta, match):
    _, chunks = chunks_of(message())
    chunk = Envelope("chunk", "teacher", arrays=chunks[0].arrays, meta={**chunks[0].meta, **meta})
    with pytest.raises(EnvelopeError, match=match) as refused:
        chunk_info(chunk)
    assert refused.value.reason == "bad_chunk"


def test_a_chunk_whose_meta_differs_from_its_first_and_a_failed_checksum_are_refused():
    _, chunks = chunks_of(message())
    reassembler = Reassembler()
    add(reassembler, chunks[0])
    liar = Envelope("chunk", "teacher", arrays=chunks[1].arrays, meta={**chunks[1].meta, "total_bytes": 10**6})
    with pytest.raises(EnvelopeError, match="differ from the message's first chunk"):
        add(reassembler, liar)
    other_sender = Envelope("chunk", "mallory", arrays=chunks[1].arrays, meta=chunks[1].meta)
    with pytest.raises(EnvelopeError, match="differ from the message's first chunk"):
        add(reassembler, other_sender)
    corrupt = np.array(chunks[-1].arrays["bytes"])
    corrupt[0] ^= 1
    for chunk in chunks[1:-1]:
        add(reassembler, chunk)
    with pytest.raises(EnvelopeError, match="do not match its checksum") as refused:
        add(reassembler, Envelope("chunk", "teacher", arrays={"bytes": corrupt}, meta=chunks[-1].meta))
    assert refused.value.reason == "bad_chunk" and reassembler.pending_bytes == 0


def test_a_message_over_the_limits_is_refused_at_its_first_chunk():
    data, chunks = chunks_of(message())
    with pytest.raises(EnvelopeError, match=f"{len(data)} bytes in chunks, over the limit of 1000 bytes") as refused:
        add(Reassembler(max_message_bytes=1000), chunks[3])
    assert refused.value.reason == "oversized"
    with pytest.raises(EnvelopeError, match="over the limit of 2000 bytes"):
        add(Reassembler(max_pending_bytes=2000), chunks[0])


def test_memory_is_bounded_by_evicting_the_oldest_incomplete_message():
    clock = Clock()
    first, second = message(seed=1), message(seed=2)
    (data, chunks_1), (_, chunks_2) = chunks_of(first), chunks_of(second)
    reassembler = Reassembler(max_pending_bytes=int(1.5 * len(data)), clock=clock)
    add(reassembler, chunks_1[0], offset=5)
    clock.now = 1.0
    add(reassembler, chunks_2[0], offset=6)
    assert reassembler.pending_bytes == len(data)
    [evicted] = reassembler.take_abandoned()
    assert (evicted.message_id, evicted.reason, evicted.first_offset) == (first.id, "evicted", 5)
    assert evicted.detail.startswith(f"1 of {len(chunks_1)} chunks arrived; evicted to make room for {second.id}")
    assert reassembler.take_abandoned() == []


def test_an_incomplete_message_is_given_up_after_the_timeout_and_a_revoked_partition_is_forgotten():
    clock = Clock()
    _, chunks = chunks_of(message())
    reassembler = Reassembler(timeout_s=60, clock=clock)
    add(reassembler, chunks[0], offset=3)
    add(reassembler, chunks[1], offset=4)
    clock.now = 60.0
    reassembler.expire()
    assert reassembler.take_abandoned() == []
    clock.now = 60.5
    reassembler.expire()
    [lost] = reassembler.take_abandoned()
    assert lost.reason == "incomplete" and lost.first_offset == 3
    assert lost.detail == f"2 of {len(chunks)} chunks arrived; the rest did not come within 60 s (chunk_timeout_s)"
    add(reassembler, chunks[0], partition=2)
    reassembler.drop_partition("t", 2)
    assert reassembler.pending_bytes == 0 and reassembler.take_abandoned() == []


def test_a_limit_too_small_for_a_chunk_is_refused():
    envelope = message()
    with pytest.raises(ValueError, match="max_record_bytes must be at least 8192 .* Got 5000 instead"):
        list(split(encode(envelope), envelope, 5000))


def test_repeats_after_completion_are_ignored_until_the_message_is_forgotten():
    _, chunks = chunks_of(message())
    reassembler = Reassembler()
    results = [add(reassembler, chunk) for chunk in chunks]
    assert results[-1] is not None and add(reassembler, chunks[0]) is None and reassembler.pending_bytes == 0
    reassembler.forget(chunks[0].meta["of"])  # its handler raised: the chunks come again and count
    results = [add(reassembler, chunk) for chunk in chunks]
    assert results[-1] is not None and results[:-1] == [None] * (len(chunks) - 1)
