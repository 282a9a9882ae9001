"""The transport contract as tests, run against the in-process bus (tests/unit/actors/test_transport_memory.py)
and against Kafka (tests/integration/kafka/test_actor_transport.py). Each module that imports them sets
``make_transport = transport_fixture(KIND)``: a fixture, parametrized by transport, that makes transports
(``make_transport(**options)``) and closes them after the test; ``topic`` is a fresh topic name.

Waiting is by condition with a generous deadline, never a fixed sleep: the bus answers at once,
a broker within seconds (a new group's first join takes about 3 s).
"""

from __future__ import annotations

import struct
import time
import uuid

import numpy as np
import pytest

from h3spark.actors import Envelope, KafkaTransport, MemoryBus, ReceiveConfig, encode, split
from h3spark.actors._chunks import CHUNK_HEADROOM
from h3spark.errors import ServiceError

DEADLINE_S = 60.0
TRANSPORTS = {"memory": lambda request, **options: MemoryBus(**options),
              "kafka": lambda request, **options: KafkaTransport(request.getfixturevalue("kafka_bootstrap"), **options)}


def transport_fixture(*kinds: str):
    """A ``make_transport`` fixture over ``kinds`` (keys of TRANSPORTS)."""

    @pytest.fixture(params=kinds)
    def make_transport(request):
        made = []

        def make(**options):
            made.append(TRANSPORTS[request.param](request, **options))
            return made[-1]

        yield make
        for transport in made:
            transport.close()

    return make_transport


@pytest.fixture
def topic():
    return f"actors-{uuid.uuid4().hex[:10]}"


def poll_until(subscription, condition, deadline_s: float = DEADLINE_S) -> None:
    """Poll until ``condition()`` holds; fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {deadline_s} s; stats: {subscription.stats}"
        subscription.poll(timeout_s=0.2)


class Collect:
    """A handler that keeps what it handled; ``fail_on`` message ids raise (each once unless ``always``)."""

    def __init__(self, fail_on=(), always=False):
        self.got, self.deliveries, self.fail_on, self.always = [], [], set(fail_on), always

    def __call__(self, envelope, delivery):
        if envelope.id in self.fail_on:
            if not self.always:
                self.fail_on.discard(envelope.id)
            raise RuntimeError(f"handler failed on {envelope.id}")
        self.got.append(envelope)
        self.deliveries.append(delivery)

    @property
    def ids(self):
        return [envelope.id for envelope in self.got]


def batch(step: int, sender="learner") -> Envelope:
    x = np.full((4, 3), step, dtype=np.float32)
    return Envelope("features", sender, model_version=step, arrays={"x": x, "y": np.arange(4) + step},
                    meta={"step": step})


def publish(transport, topic, envelopes):
    for envelope in envelopes:
        transport.publish(topic, envelope)
    transport.flush()
    return [envelope.id for envelope in envelopes]


def dead_letters(transport, topic, count):
    """The dead-letter records of ``topic`` once there are ``count``, each as (value, headers dict)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        records = transport.read(topic + ".dead")
        if len(records) >= count or time.monotonic() > deadline:
            return [(bytes(record.value), {name: value.decode() for name, value in record.headers})
                    for record in records]


def test_messages_reach_the_handler_with_their_fields_and_are_committed(make_transport, topic):
    transport = make_transport()
    sent = [batch(step) for step in range(3)]
    publish(transport, topic, sent)
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler)
    poll_until(subscription, lambda: len(handler.got) == 3)
    for got, want in zip(handler.got, sent):
        assert (got.id, got.kind, got.sender, got.model_version, got.meta) == (want.id, "features", "learner",
                                                                               want.model_version, want.meta)
        assert np.array_equal(got.arrays["x"], want.arrays["x"]) and np.array_equal(got.arrays["y"], want.arrays["y"])
    assert handler.deliveries == [(topic, 0, 0), (topic, 0, 1), (topic, 0, 2)]
    subscription.close()
    assert transport.committed(f"{topic}-g", topic) == 3 and subscription.stats.handled == 3
    assert subscription.stats.duplicates == 0 and subscription.stats.assignments == 1


def test_every_group_gets_every_message_and_one_group_handles_each_once(make_transport, topic):
    transport = make_transport()
    ids = publish(transport, topic, [batch(step) for step in range(4)])
    first, second, other = Collect(), Collect(), Collect()
    subscriptions = [transport.subscribe([topic], f"{topic}-shared", first),
                     transport.subscribe([topic], f"{topic}-shared", second),
                     transport.subscribe([topic], f"{topic}-other", other)]
    deadline = time.monotonic() + DEADLINE_S
    while len(first.got) + len(second.got) < 4 or len(other.got) < 4:
        assert time.monotonic() < deadline
        for subscription in subscriptions:
            subscription.poll(timeout_s=0.1)
    assert sorted(first.ids + second.ids) == sorted(ids) and other.ids == ids
    for subscription in subscriptions:
        subscription.close()


def test_a_group_resumes_after_its_committed_offset(make_transport, topic):
    transport = make_transport()
    publish(transport, topic, [batch(0), batch(1)])
    before = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", before)
    poll_until(subscription, lambda: len(before.got) == 2)
    subscription.close()
    later = publish(transport, topic, [batch(2), batch(3)])
    after = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", after)
    poll_until(subscription, lambda: len(after.got) == 2)
    assert after.ids == later and [d.offset for d in after.deliveries] == [2, 3]
    subscription.close()


def test_a_replay_does_not_handle_a_message_twice(make_transport, topic):
    transport = make_transport()
    ids = publish(transport, topic, [batch(step) for step in range(3)])
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler)
    poll_until(subscription, lambda: len(handler.got) == 3)
    subscription.seek(topic, 0)
    poll_until(subscription, lambda: subscription.stats.duplicates == 3)
    later = publish(transport, topic, [batch(3)])
    poll_until(subscription, lambda: len(handler.got) == 4)
    assert handler.ids == ids + later and subscription.stats.handled == 4
    subscription.close()
    assert transport.committed(f"{topic}-g", topic) == 4


def test_the_seen_ids_are_bounded_so_a_replay_past_them_is_handled_again(make_transport, topic):
    transport = make_transport(seen_ids_capacity=2)
    ids = publish(transport, topic, [batch(step) for step in range(3)])
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler)
    poll_until(subscription, lambda: len(handler.got) == 3)
    subscription.seek(topic, 1)
    poll_until(subscription, lambda: subscription.stats.duplicates == 2)
    assert handler.ids == ids  # the newest two are remembered
    subscription.seek(topic, 0)
    poll_until(subscription, lambda: subscription.stats.handled == 6)
    # the documented limit: the oldest id was forgotten, and remembering it again pushed out the next ones
    assert handler.ids == ids + ids and subscription.stats.duplicates == 2
    subscription.close()


def test_a_failing_handler_leaves_its_message_for_the_next_poll_and_the_next_member(make_transport, topic):
    transport = make_transport()
    ids = publish(transport, topic, [batch(step) for step in range(3)])
    handler = Collect(fail_on=[ids[1]])
    subscription = transport.subscribe([topic], f"{topic}-g", handler)
    with pytest.raises(RuntimeError, match=f"handler failed on {ids[1]}"):
        poll_until(subscription, lambda: False)
    poll_until(subscription, lambda: len(handler.got) == 3)
    assert handler.ids == ids
    subscription.close()
    stubborn = Collect(fail_on=[ids[0]], always=True)
    publish(transport, topic, [batch(3)])
    subscription = transport.subscribe([topic], f"{topic}-g2", stubborn)
    with pytest.raises(RuntimeError):
        poll_until(subscription, lambda: False)
    subscription.close()
    assert transport.committed(f"{topic}-g2", topic) in (None, 0)
    again = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g2", again)
    poll_until(subscription, lambda: len(again.got) == 4)
    assert again.ids[0] == ids[0]
    subscription.close()


def test_a_message_over_the_record_limit_travels_in_chunks(make_transport, topic):
    transport = make_transport()
    weights = np.random.default_rng(0).standard_normal((3, 300_000)).astype(np.float32)  # 3.6 MB
    sent = Envelope("parameters", "teacher", model_version=12, arrays={"dense0.weight": weights})
    publish(transport, topic, [sent, batch(1)])
    records = transport.read(topic)
    assert len(records) == 5 and all(len(record.value) <= transport.max_record_bytes for record in records)
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler)
    poll_until(subscription, lambda: len(handler.got) == 2)
    assert handler.ids == [sent.id, handler.got[1].id] and handler.deliveries[0].offset == 0
    assert np.array_equal(handler.got[0].arrays["dense0.weight"], weights)
    subscription.close()
    assert transport.committed(f"{topic}-g", topic) == 5


def test_a_chunked_message_whose_handler_failed_comes_again_from_its_first_chunk(make_transport, topic):
    transport = make_transport(max_record_bytes=20_000)
    weights = np.arange(30_000, dtype=np.float32)  # 120 KB: 8 chunks
    sent = Envelope("parameters", "teacher", model_version=2, arrays={"w": weights})
    ids = publish(transport, topic, [batch(0), sent, batch(2)])
    handler = Collect(fail_on=[sent.id])
    subscription = transport.subscribe([topic], f"{topic}-g", handler)
    with pytest.raises(RuntimeError, match=f"handler failed on {sent.id}"):
        poll_until(subscription, lambda: False)
    poll_until(subscription, lambda: len(handler.got) == 3)
    assert handler.ids == ids and np.array_equal(handler.got[1].arrays["w"], weights)
    assert [delivery.offset for delivery in handler.deliveries] == [0, 1, 9]
    subscription.close()
    assert transport.committed(f"{topic}-g", topic) == 10


def test_a_100_mb_message_arrives_whole(make_transport, topic):
    transport = make_transport()
    weights = np.arange(25_000_000, dtype=np.int32)  # each value names its place: a misplaced chunk shows
    sent = Envelope("parameters", "teacher", model_version=1, arrays={"w": weights})
    publish(transport, topic, [sent])
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler, config=ReceiveConfig(max_batch=500))
    poll_until(subscription, lambda: len(handler.got) == 1, deadline_s=240)
    assert handler.ids == [sent.id] and np.array_equal(handler.got[0].arrays["w"], weights)
    subscription.close()
    chunks = -(-len(encode(sent)) // (transport.max_record_bytes - CHUNK_HEADROOM))
    assert chunks > 100 and transport.committed(f"{topic}-g", topic) == chunks


def test_malformed_records_go_to_the_dead_letter_topic_and_the_group_goes_on(make_transport, topic):
    transport = make_transport()
    future = bytearray(encode(batch(0)))
    struct.pack_into("<H", future, 4, 2)  # a schema version this decoder does not read
    transport._send(topic, b"not an envelope", None, [])
    transport._send(topic, future, None, [])
    ids = publish(transport, topic, [batch(1)])
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler)
    poll_until(subscription, lambda: len(handler.got) == 1)
    assert handler.ids == ids and subscription.stats.dead_letters == 2
    letters = dead_letters(transport, topic, 2)
    assert [value for value, _ in letters] == [b"not an envelope", bytes(future)]
    assert [headers["h3spark-reason"] for _, headers in letters] == ["not_an_envelope", "unknown_version"]
    assert [headers["h3spark-source"] for _, headers in letters] == [f"{topic}/0/0", f"{topic}/0/1"]
    assert letters[1][1]["h3spark-detail"].endswith("schema version 2; this decoder reads version 1")
    assert all(headers["h3spark-group"] == f"{topic}-g" for _, headers in letters)
    subscription.close()
    assert transport.committed(f"{topic}-g", topic) == 3


def test_a_dead_letter_too_long_for_a_record_is_cut_and_says_how_long_it_was(make_transport, topic):
    transport = make_transport(max_record_bytes=20_000)
    transport._send(topic, b"x" * 19_000, None, [])
    subscription = transport.subscribe([topic], f"{topic}-g", Collect())
    poll_until(subscription, lambda: subscription.stats.dead_letters == 1)
    [(value, headers)] = dead_letters(transport, topic, 1)
    assert headers["h3spark-value-bytes"] == "19000" and 0 < len(value) < 19_000 and set(value) == {ord("x")}
    subscription.close()


def test_an_incomplete_chunk_set_goes_to_the_dead_letter_topic_after_its_timeout(make_transport, topic):
    transport = make_transport(max_record_bytes=20_000)
    sent = Envelope("parameters", "teacher", arrays={"w": np.zeros(50_000, np.uint8)})
    chunks = list(split(encode(sent), sent, transport.max_record_bytes))
    for chunk in chunks[:2]:
        transport._send(topic, chunk, b"teacher", [])
    ids = publish(transport, topic, [batch(1)])
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler, config=ReceiveConfig(chunk_timeout_s=0.0))
    poll_until(subscription, lambda: subscription.stats.dead_letters == 1)
    assert handler.ids == ids
    [(value, headers)] = dead_letters(transport, topic, 1)
    assert value == b"" and headers["h3spark-reason"] == "incomplete" and headers["h3spark-message-id"] == sent.id
    assert headers["h3spark-source"] == f"{topic}/0/0"
    assert headers["h3spark-detail"].startswith(f"message {sent.id} from teacher: 2 of {len(chunks)} chunks arrived")
    subscription.close()
    assert transport.committed(f"{topic}-g", topic) == 3  # held at the first chunk until the set was given up


def test_a_new_group_can_start_at_the_latest_record(make_transport, topic):
    transport = make_transport()
    publish(transport, topic, [batch(0)])
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler, start="latest")
    poll_until(subscription, lambda: subscription.stats.assignments == 1)
    markers = []
    deadline = time.monotonic() + DEADLINE_S
    while not handler.got:  # until the group's position is fixed, a marker may land before it
        assert time.monotonic() < deadline
        markers += publish(transport, topic, [batch(len(markers) + 1)])
        subscription.poll(timeout_s=0.5)
    assert set(handler.ids) <= set(markers)
    subscription.close()


def test_subscribe_refuses_an_unknown_start(make_transport, topic):
    with pytest.raises(ValueError, match="'start' parameter of subscribe must be 'earliest' or 'latest'. Got 'end'"):
        make_transport().subscribe([topic], f"{topic}-g", Collect(), start="end")


def test_a_record_over_the_limit_is_refused_by_the_transport(make_transport, topic):
    transport = make_transport(max_record_bytes=20_000)
    with pytest.raises(ServiceError):
        transport._send(topic, bytes(2_000_000), None, [])
        transport.flush()


def test_closing_the_transport_closes_its_subscriptions_after_their_commits(make_transport, topic):
    transport = make_transport()
    publish(transport, topic, [batch(0), batch(1)])
    handler = Collect()
    subscription = transport.subscribe([topic], f"{topic}-g", handler)
    poll_until(subscription, lambda: len(handler.got) == 2)
    transport.close()
    assert subscription.closed and transport.committed(f"{topic}-g", topic) == 2
    with pytest.raises(ValueError, match=f"this subscription of group '{topic}-g' is closed; subscribe again"):
        subscription.poll()
