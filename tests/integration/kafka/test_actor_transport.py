"""The transport contract (tests/unit/actors/contract.py) against the real broker, plus what only Kafka has:
a handler slower than max_poll_interval_ms keeps its consumer in the group, and the plain kafka-python
consumer of docs/actors.md reads what actors publish."""

import time

import numpy as np

from h3spark.actors import Envelope
from tests.unit.actors.contract import *  # noqa: F401,F403 (the contract's tests run here)
from tests.unit.actors.contract import Collect, batch, poll_until, publish, transport_fixture
from tests.unit.actors.test_docs_snippet import snippet

SLOW_CONSUMER = {"max_poll_interval_ms": 6000, "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}

make_transport = transport_fixture("kafka")


class SlowHandler(Collect):
    """Each message takes longer than the consumer's max_poll_interval_ms (a long training step)."""

    def __init__(self, step_s: float):
        super().__init__()
        self.step_s, self.calls = step_s, 0

    def __call__(self, envelope, delivery):
        self.calls += 1
        time.sleep(self.step_s)
        super().__call__(envelope, delivery)


def test_a_handler_slower_than_max_poll_interval_keeps_its_place_in_the_group(make_transport, topic):
    transport = make_transport(consumer_options=SLOW_CONSUMER)
    ids = publish(transport, topic, [batch(0), batch(1)])
    handler = SlowHandler(step_s=8.0)  # > max_poll_interval_ms = 6 s
    subscription = transport.subscribe([topic], f"{topic}-slow", handler)
    poll_until(subscription, lambda: len(handler.got) == 2, deadline_s=120)
    later = publish(transport, topic, [batch(2)])  # the group still delivers to this member
    handler.step_s = 0.0
    poll_until(subscription, lambda: len(handler.got) == 3)
    subscription.close()
    assert handler.ids == ids + later and handler.calls == 3
    assert subscription.stats.assignments == 1 and subscription.stats.duplicates == 0
    assert transport.committed(f"{topic}-slow", topic) == 3


def test_the_documented_plain_consumer_reads_what_actors_publish(make_transport, topic, kafka_bootstrap):
    transport = make_transport(max_record_bytes=100_000)
    weights = np.arange(200_000, dtype=np.float32)  # 800 KB: 9 chunks of at most 100,000 bytes
    sent = [Envelope("parameters", "teacher", model_version=5, arrays={"dense0.weight": weights}), batch(1)]
    publish(transport, topic, sent)
    namespace: dict = {}
    exec(compile(snippet("decode") + snippet("consumer"), "docs/actors.md", "exec"), namespace)
    read = []
    for header, arrays in namespace["read_messages"](topic, kafka_bootstrap, f"{topic}-plain"):
        read.append((header, arrays))
        if len(read) == 2:
            break
    assert [header["id"] for header, _ in read] == [envelope.id for envelope in sent]
    assert np.array_equal(read[0][1]["dense0.weight"], weights) and read[1][0]["meta"] == {"step": 1}
