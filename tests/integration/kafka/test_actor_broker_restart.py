"""The broker goes away and comes back while actors publish and handle: KafkaTransport's producer and
consumer reconnect, no message is lost, duplicates are counted and none is handled twice.

The broker stopped is a private one (its own ports and state dir, started with the machinery of
``h3spark services``), never the shared broker on 9092 that other tests use.
"""

from __future__ import annotations

import collections
import shutil
import socket
import threading
import time
import uuid

import numpy as np
import pytest

from h3spark import services
from h3spark.actors import Envelope, KafkaTransport
from tests.conftest import require

BOUND_S = 300.0     # a wait this long only ends in a failure when something was lost
PER_PHASE = 40      # messages published in each phase of the run


class PrivateBroker:
    """A one-node KRaft broker on free ports, its state in ``state_dir``; ``stop`` and ``start`` keep its data."""

    def __init__(self, monkeypatch, state_dir):
        monkeypatch.setenv("H3SPARK_STATE_DIR", str(state_dir))  # read by every services call below
        self.state_dir = state_dir
        broker, controller = _free_ports(2)
        self.config = services.ServicesConfig.from_env({"kafka_port": broker, "kafka_controller_port": controller,
                                                        "timeout_s": BOUND_S})
        self.bootstrap = f"127.0.0.1:{broker}"

    def start(self) -> None:
        endpoint = services.up(["kafka"], self.config)["kafka"]
        assert endpoint.bootstrap_servers == self.bootstrap

    def stop(self) -> None:
        assert services.down(self._ours()) == ["kafka"]

    def _ours(self) -> list[str]:
        """["kafka"], once sure that the services calls see this broker's state dir (the shared one is not ours)."""
        assert services.state_dir() == self.state_dir, "the private broker's state dir is not in effect"
        return ["kafka"]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def private_broker(monkeypatch, tmp_path):
    require(shutil.which("java") is not None, "Java 17 is needed to run a Kafka broker; install a JDK "
                                              "(apt-get install openjdk-17-jdk-headless)")
    broker = PrivateBroker(monkeypatch, tmp_path / "services")
    broker.start()
    yield broker
    services.down(broker._ours())


class Handler:
    """Counts each message id it handles; a second call for one id would be a message handled twice."""

    def __init__(self):
        self.calls: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, envelope, delivery) -> None:
        assert envelope.arrays["x"][0] == envelope.model_version  # the payload arrived whole
        with self.lock:
            self.calls[envelope.id] += 1

    def ids(self) -> set[str]:
        with self.lock:
            return set(self.calls)


class PollingThread(threading.Thread):
    """Polls a subscription until stopped, as an actor's loop does; keeps any exception that escapes."""

    def __init__(self, subscription):
        super().__init__(name="actor-poll", daemon=True)
        self.subscription, self.stopping, self.escaped = subscription, threading.Event(), []

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.subscription.poll(timeout_s=0.5)
        except BaseException as error:  # noqa: BLE001 - kept for the test's assertion, not hidden
            self.escaped.append(error)


def publish(transport, topic: str, phase: int) -> list[Envelope]:
    sent = [Envelope("features", "sender", model_version=phase * 1000 + i,
                     arrays={"x": np.full(64, phase * 1000 + i, dtype=np.int64)}) for i in range(PER_PHASE)]
    for envelope in sent:
        transport.publish(topic, envelope)
    return sent


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {BOUND_S} s"
        time.sleep(0.2)


@pytest.mark.timeout(int(BOUND_S * 4))
def test_actors_ride_out_a_broker_restart_without_losing_or_handling_twice(private_broker):
    topic, group = f"restart-{uuid.uuid4().hex[:10]}", "learner"
    handler = Handler()
    producer_options = {"delivery_timeout_ms": int(BOUND_S * 1000)}  # retries outlast the broker's absence
    with KafkaTransport(private_broker.bootstrap, producer_options=producer_options) as sender, \
            KafkaTransport(private_broker.bootstrap) as receiver:
        subscription = receiver.subscribe([topic], group, handler)
        poller = PollingThread(subscription)
        poller.start()
        sent = publish(sender, topic, phase=0)
        sender.flush()
        wait_for(lambda: handler.ids() >= {e.id for e in sent}, "the first messages handled")

        sent += publish(sender, topic, phase=1)        # some of these are in flight when the broker stops
        private_broker.stop()
        during = publish(sender, topic, phase=2)       # buffered by the producer while no broker is there
        resent = sent[-PER_PHASE // 2:]                # a sender that cannot tell what arrived sends it again
        for envelope in resent:
            sender.publish(topic, envelope)
        private_broker.start()
        sent += during + publish(sender, topic, phase=3)
        sender.flush(timeout_s=BOUND_S)                # raises for any record the broker never took
        wait_for(lambda: handler.ids() >= {e.id for e in sent} or poller.escaped, "every message handled")
        poller.stopping.set()
        poller.join(BOUND_S)
        log = sender.read(topic, timeout_s=60)

    assert poller.escaped == [] and not poller.is_alive()
    assert handler.ids() == {e.id for e in sent} and len(sent) == 4 * PER_PHASE
    assert max(handler.calls.values()) == 1 and subscription.stats.handled == len(sent)
    in_log = collections.Counter(bytes(record.value) for record in log)
    duplicates_in_log = sum(in_log.values()) - len(in_log)
    assert duplicates_in_log >= len(resent)               # the re-sent ones are in the topic twice
    assert subscription.stats.duplicates >= duplicates_in_log  # and each was recognised, not handled
    print(f"records in the log {sum(in_log.values())} for {len(sent)} messages; duplicates in the log "
          f"{duplicates_in_log} (re-sent {len(resent)}), delivered and skipped {subscription.stats.duplicates}, "
          f"handled twice 0, group assignments {subscription.stats.assignments}")
