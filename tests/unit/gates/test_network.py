"""A gates network in one process on the in-process bus: with one batch in flight it trains exactly as
the whole model does; pipelined, sentinels train, validate and test while it runs, and join and leave
during training; a sentinel that fails is reported and its batches dropped; bad cuts are config errors."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.config import H3SparkConfig
from h3spark.errors import ConfigError, UsageError
from h3spark.gates import GateNetwork, GatePlan, load_splits
from h3spark.train.engines.torch_model import TorchModel

MODEL = {"input_shape": [64], "layers": [
    {"type": "dense", "name": "hidden", "units": 16, "activation": "relu"},
    {"type": "dense", "name": "middle", "units": 12, "activation": "tanh"},
    {"type": "dense", "name": "logits", "units": 10}]}


def config(sentinels: dict, **gates) -> H3SparkConfig:
    section = {"model": MODEL, "cut": {"g1": ["hidden"], "g2": ["middle", "logits"]},
               "training": {"optimizer": "sgd", "lr": 0.2, "batch_size": 30}, "max_in_flight": 2,
               "data": {"bundled": "digits", "scale": 0.0625, "rows": 300, "validation_fraction": 0.2,
                        "test_fraction": 0.2}, "sentinels": sentinels, **gates}
    return H3SparkConfig.model_validate({"name": "gates-test", "gates": section})


def network(cfg: H3SparkConfig, tmp_path, lines: list | None = None) -> GateNetwork:
    return GateNetwork.from_config(cfg, str(tmp_path), progress=(lines.append if lines is not None else None))


def stage_weights(net: GateNetwork) -> dict:
    weights = {}
    for gate in net.plan.gates:
        weights.update(net.members[gate.name].handle.outcome["role"].stage.get_weights())
    return weights


def test_one_batch_in_flight_trains_exactly_as_the_whole_model(tmp_path):
    cfg = config({"train-1": {"kind": "train", "epochs": 2}}, max_in_flight=1)
    net = network(cfg, tmp_path)
    result = net.run(timeout_s=60)
    assert result.delays() == {0: 2 * 2 * 6} and not result.failed  # 2 gates x 2 epochs x 6 batches, none late
    plan = GatePlan.from_config(cfg.gates, cfg.name)
    train = load_splits(plan)["train"]
    whole = TorchModel(plan.spec, seed=0, options=plan.options)
    rng = np.random.default_rng([0, 0])  # the sentinel's order: seed, shard
    for _ in range(2):
        order = rng.permutation(len(train))
        for start in range(0, len(order), 30):
            rows = order[start:start + 30]
            whole.train_step(train.features[rows], train.labels[rows])
    for name, value in whole.get_weights().items():
        np.testing.assert_allclose(stage_weights(net)[name], value, atol=1e-5, err_msg=name)


def test_sentinels_train_validate_and_test_while_the_gates_pipeline_batches(tmp_path):
    lines = []
    cfg = config({"train-1": {"kind": "train", "epochs": 3}, "train-2": {"kind": "train", "epochs": 3},
                  "val": {"kind": "validation", "every_batches": 6}, "test": {"kind": "test"}})
    result = network(cfg, tmp_path, lines).run(timeout_s=60)
    assert not result.failed
    assert [line["epoch"] for line in result.epochs["train-1"]] == [1, 2, 3]
    assert sum(line.startswith("train-2 epoch ") and " loss " in line and " acc " in line for line in lines) == 3
    assert result.sentinels["train-1"]["batches"] == 9 and result.sentinels["train-2"]["samples"] == 270
    assert {gate: report["version"] for gate, report in result.gates.items()} == {"g1": 18, "g2": 18}
    assert all(report["in_flight"] == 0 for report in result.gates.values())
    assert sum(result.delays("g1").values()) == 18 and max(result.delays()) <= 3  # 2 sentinels x 2 in flight
    # a sentinel sends its first max_in_flight batches before it reads anything, so the first gate runs
    # their forward passes before the first backward pass comes: the second comes at least one update late
    assert max(result.delays("g1")) >= 1
    validation = result.scores["val"]
    assert len(validation) == 18 // 6 and validation[0]["rows"] == 60  # one pass per 6 training batches and set(validation[0]["versions"]) == {"g1", "g2"}
    test = result.final_score("test")
    assert test["rows"] == 60 and test["versions"] == {"g1": [18, 18], "g2": [18, 18]}
    assert result.sentinels["val"]["state"] == "stopped" and result.sentinels["test"]["state"] == "done"


def _poll_until(net: GateNetwork, condition, polls: int = 2000) -> None:
    for _ in range(polls):
        if condition():
            return
        assert net.poll(0.05), f"the network ended early (phase {net.phase})"
    raise AssertionError("the condition did not hold")


def test_a_sentinel_joins_and_another_leaves_while_the_network_trains(tmp_path):
    cfg = config({"train-1": {"kind": "train", "epochs": 4}, "train-2": {"kind": "train", "epochs": 40, "start": False}})
    net = network(cfg, tmp_path)
    net.start()
    try:
        _poll_until(net, lambda: net.batches_done.get("train-1", 0) >= 2)
        net.add_sentinel("train-2")
        with pytest.raises(UsageError, match="already running"):
            net.add_sentinel("train-2")
        _poll_until(net, lambda: net.batches_done.get("train-2", 0) >= 2)
        net.remove_sentinel("train-2")
        _poll_until(net, lambda: net.members["train-2"].state == "removed")
        while net.poll(0.05):
            pass
    finally:
        result = net.close()
    left = result.sentinels["train-2"]
    assert left["state"] == "removed" and 2 <= left["batches"] < 40 * 3
    assert result.sentinels["train-1"]["state"] == "done" and result.sentinels["train-1"]["batches"] == 4 * 3
    total = left["batches"] + 12
    assert {report["version"] for report in result.gates.values()} == {total}  # every batch sent came back
    assert all(report["in_flight"] == 0 for report in result.gates.values())
    with pytest.raises(UsageError, match="no running sentinel"):
        net.remove_sentinel("train-2")


def test_a_failing_sentinel_is_reported_and_the_others_finish(tmp_path):
    cfg = config({"train-1": {"kind": "train", "epochs": 1}, "val": {"kind": "validation", "every_batches": 1}},
                 data={"bundled": "digits", "scale": 0.0625, "rows": 300, "validation_fraction": 0.0})
    result = network(cfg, tmp_path).run(timeout_s=60)
    assert result.failed == ["val"] and "validation sentinel val has no rows" in result.errors["val"]
    assert result.sentinels["train-1"]["state"] == "done" and result.gates["g1"]["version"] == 8


@pytest.mark.parametrize("cut, message", [
    ({"g1": ["hidden"], "g2": ["logits"]}, "every layer of the spec once"),
    ({"g1": ["hidden", "logits"], "g2": ["middle"]}, "every layer of the spec once"),
    ({"g1": ["hiden"], "g2": ["middle", "logits"]}, "no layer 'hiden'"),
])
def test_a_cut_that_is_not_the_spec_s_layers_in_order_is_a_config_error(cut, message):
    cfg = config({"train-1": {"kind": "train"}}, cut=cut)
    with pytest.raises(ConfigError, match=message):
        GatePlan.from_config(cfg.gates, cfg.name)
