"""An actor restarted in a new process (a new transport, empty memory) knows from its snapshot which messages its
model holds: delivered again, they are skipped and counted as duplicates, and the others are trained once."""

import time

import numpy as np

from h3spark.actors import Actor, MemoryBus, features_envelope
from h3spark.actors._snapshot import SEEN_NAME, Snapshots
from h3spark.config import ActorConfig

DEADLINE_S = 30.0


def config() -> ActorConfig:
    return ActorConfig.model_validate({"inputs": {"data": "train"}, "training": {"batch_size": 8, "lr": 0.05},
                                       "snapshot_every_steps": 5,
                                       "model": {"mlp": {"input_shape": [4], "hidden": [8], "classes": 2}, "seed": 1}})


def messages(count: int, seed: int = 0) -> list:
    """``count`` messages of 8 rows (one training step each)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 8 * count)
    features = (rng.normal(0, 0.5, (8 * count, 4)) + labels[:, None] * 3.0).astype(np.float32)
    return [features_envelope("producer", features[i:i + 8], labels[i:i + 8]) for i in range(0, 8 * count, 8)]


def run_until(actor: Actor, condition) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not reached; status {actor.status()}"
        actor.poll(timeout_s=0.05)


def test_messages_in_the_snapshot_delivered_again_after_a_restart_are_skipped_and_counted(tmp_path):
    home, sent = f"file://{tmp_path}/learner", messages(7)
    first_bus = MemoryBus()
    for envelope in sent:
        first_bus.publish("data", envelope)
    first = Actor.from_config("learner", config(), first_bus, workdir="/tmp", network="net", home=home)
    first.open()
    run_until(first, lambda: first.stats.handled == 7)
    for subscription in (first.data, first.control_subscription):        # killed: no final snapshot
        subscription.close()
    snapshot = Snapshots(f"{home}/snapshots").latest()
    assert snapshot.step == 5 and snapshot.seen_ids() == [envelope.id for envelope in sent[:4]]  # in message 4's step
    assert (tmp_path / "learner" / "snapshots" / "step-00000005" / SEEN_NAME).exists()

    second_bus = MemoryBus()                                              # a new process: its commits lost, all again
    for envelope in [*sent, *messages(1, seed=3)]:
        second_bus.publish("data", envelope)
    second = Actor.from_config("learner", config(), second_bus, workdir="/tmp", network="net", home=home)
    assert second.model.step == 5
    second.open()
    run_until(second, lambda: second.stats.handled + second.duplicates() == 4 + 8)
    second.close()
    assert second.duplicates() == 4                                       # the messages the snapshot's model holds
    # trained: 4 (the snapshot was taken in its step, before it counted as handled), 5 and 6 (lost with the kill), 7
    assert second.model.step == 5 + 4 and second.stats.rows_trained == 8 * (5 + 4)


def test_a_snapshot_without_seen_ids_restores_as_before(tmp_path):
    home = f"file://{tmp_path}/learner"
    bus = MemoryBus()
    actor = Actor.from_config("learner", config(), bus, workdir="/tmp", network="net", home=home)
    actor.snapshot()
    snapshot = Snapshots(f"{home}/snapshots").latest()
    assert snapshot.step == 0 and snapshot.seen_ids() == []
    assert not (tmp_path / "learner" / "snapshots" / "step-00000000" / SEEN_NAME).exists()
