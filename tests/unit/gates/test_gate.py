"""A gate's and a sentinel's handlers, message by message on the in-process bus: what a gate sends on
and to whom, versions stamped on the way; late messages of a forgotten sentinel are dropped; bad
messages and a diverged loss are errors that say what to do."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.actors import Envelope, MemoryBus, decode
from h3spark.errors import DataError
from h3spark.gates import Gate, GatePlan, TrainingSentinel, load_splits
from h3spark.gates import _messages as messages

from tests.unit.gates.test_network import config

PLAN = GatePlan.from_config(config({"train-1": {"kind": "train", "epochs": 1}}).gates, "unit")
TOPICS = PLAN.topics("r1")


def sent(bus: MemoryBus, role: str) -> list[Envelope]:
    return [decode(record.value) for record in bus.read(TOPICS.inbox(role))]


def test_gates_pass_activations_forward_and_gradients_back_stamping_their_versions():
    bus = MemoryBus()
    first, last = Gate("g1", PLAN, bus, TOPICS), Gate("g2", PLAN, bus, TOPICS)
    x = np.zeros((3, 64), np.float32)
    first.handle(messages.forward("train-1", "train-1", 0, "train", x, {}))
    (hidden,) = sent(bus, "g2")
    assert hidden.kind == "features" and hidden.arrays["x"].shape == (3, 16) and hidden.meta["versions"] == {"g1": 0}
    last.handle(hidden)
    (result,) = sent(bus, "train-1")
    assert result.kind == "predictions" and result.arrays["logits"].shape == (3, 10)
    assert result.meta["versions"] == {"g1": 0, "g2": 0} and result.meta["batch"] == 0
    last.handle(messages.backward("train-1", "train-1", 0, np.ones((3, 10), np.float32) / 30, 0))
    (grad,) = sent(bus, "g1")
    assert grad.kind == "gradients" and grad.arrays["grad"].shape == (3, 16) and last.stage.version == 1
    first.handle(grad)
    done = sent(bus, "train-1")[-1]
    assert done.meta == {"op": "done", "sentinel": "train-1", "batch": 0} and first.report()["delays"] == {"0": 1}


def test_a_forgotten_sentinel_s_late_messages_are_dropped():
    bus = MemoryBus()
    gate = Gate("g1", PLAN, bus, TOPICS)
    gate.handle(messages.forward("train-9", "train-9", 0, "train", np.zeros((2, 64), np.float32), {}))
    gate.handle(messages.command("forget", sentinel="train-9"))
    assert gate.stage.in_flight == 0
    gate.handle(messages.backward("g2", "train-9", 0, np.zeros((2, 16), np.float32), 0))  # late: dropped
    gate.handle(messages.forward("train-9", "train-9", 1, "train", np.zeros((2, 64), np.float32), {}))
    assert gate.stage.in_flight == 0 and gate.stage.version == 0


def test_bad_messages_are_refused():
    gate = Gate("g1", PLAN, MemoryBus(), TOPICS)
    with pytest.raises(DataError, match="mode 'learn'"):
        gate.handle(messages.forward("s", "s", 0, "learn", np.zeros((2, 64), np.float32), {}))
    with pytest.raises(DataError, match="meta.batch"):
        gate.handle(Envelope("features", "s", arrays={"x": np.zeros((2, 64), np.float32)},
                             meta={"sentinel": "s", "batch": "zero", "mode": "train"}))
    with pytest.raises(DataError, match="no forward pass in flight"):
        gate.handle(messages.backward("g2", "s", 5, np.zeros((2, 16), np.float32), 0))


def test_a_diverged_loss_stops_the_sentinel_with_what_to_change():
    bus = MemoryBus()
    sentinel = TrainingSentinel("train-1", PLAN, bus, TOPICS, load_splits(PLAN)["train"])
    sentinel.step()
    assert len(sentinel.in_flight) == 2 and len(sent(bus, "g1")) == 2  # max_in_flight
    rows = len(sent(bus, "g1")[0].arrays["x"])
    logits = np.full((rows, 10), np.nan, np.float32)
    incoming = messages.forward("g1", "train-1", 0, "train", np.zeros((rows, 16), np.float32), {"g1": 4})
    with pytest.raises(DataError, match="training diverged.*Lower gates.training.lr"):
        sentinel.handle(messages.result("g2", incoming, logits, {"g1": 4, "g2": 4}, 4))


def test_a_scoring_sentinel_reports_a_loss_that_is_not_finite_as_none():
    from h3spark.gates import TestSentinel, score_line

    bus = MemoryBus()
    plan = GatePlan.from_config(config({"train-1": {"kind": "train"}, "test": {"kind": "test"}}).gates, "unit")
    sentinel = TestSentinel("test", plan, bus, TOPICS, load_splits(plan)["test"].shard(0, 20))  # 3 rows: one batch
    sentinel.handle(messages.command("start"))
    sentinel.step()
    (forward,) = sent(bus, "g1")
    logits = np.full((3, 10), np.inf, np.float32)
    sentinel.handle(messages.result("g2", forward, logits, {"g1": 2, "g2": 2}, 2))
    (score,) = sentinel.scores
    assert score["loss"] is None and score["rows"] == 3 and sentinel.finished()
    assert score_line("test", score).startswith("test test 1 loss nan acc ")
