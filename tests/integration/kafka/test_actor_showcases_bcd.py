"""Showcases (b) distillation, (c) transfer and (d) the validation sentinel on the real broker at full length,
each actor a process of its own, and the levels their configs state: the student recovers >= 0.3 of the
teacher-baseline error gap; the torch target that loaded the MXNet source's first layer reaches 0.93 in fewer
steps than the same learner from scratch; the sentinel scores every 50th version and the last >= 0.90."""

import uuid
from pathlib import Path

from h3spark.actors._showcases import run_distillation, run_sentinel, run_transfer
from h3spark.config import load_config
from h3spark.train import validation_context

CONF = Path(__file__).resolve().parents[3] / "conf"
DISTILL_LEVEL = 0.3      # conf/actors_distill.yaml
TRANSFER_LEVEL = 0.93    # conf/actors_transfer.yaml
SENTINEL_LEVEL = 0.90    # conf/actors_sentinel.yaml


def on_broker(tmp_path, conf: str, prefixes: dict[str, str], bootstrap: str):
    """conf/CONF on the broker, its network names and topics made fresh (a broker keeps old topics)."""
    text = (CONF / conf).read_text()
    for old, new in prefixes.items():
        text = text.replace(old, new)
    path = tmp_path / conf
    path.write_text(text)
    overrides = ["actors.transport=kafka", f"actors.bootstrap_servers={bootstrap}"]
    return load_config(path, overrides=overrides, context=validation_context())


def fresh(*names: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {name: f"{name.rstrip('.')}-{tag}{'.' if name.endswith('.') else ''}" for name in names}


def test_distillation_on_the_broker_recovers_its_stated_share_of_the_error_gap(tmp_path, kafka_bootstrap):
    prefixes = fresh("actors-distill", "distill.")
    teacher = on_broker(tmp_path, "actors_distill_teacher.yaml", prefixes, kafka_bootstrap)
    network = on_broker(tmp_path, "actors_distill.yaml", prefixes, kafka_bootstrap)
    result = run_distillation(teacher, network, str(tmp_path / "w"))
    errors = result.errors
    print("DISTILL", errors, result.recovered)
    assert result.holdout_rows == 539 and errors["teacher"] < errors["student"] < errors["baseline"]
    assert result.recovered >= DISTILL_LEVEL


def test_transfer_from_mxnet_to_torch_on_the_broker_reaches_its_level_in_fewer_steps(tmp_path, kafka_bootstrap):
    prefixes = fresh("actors-transfer", "transfer.")
    source = on_broker(tmp_path, "actors_transfer_source.yaml", prefixes, kafka_bootstrap)
    network = on_broker(tmp_path, "actors_transfer.yaml", prefixes, kafka_bootstrap)
    result = run_transfer(source, network, str(tmp_path / "w"), TRANSFER_LEVEL)
    print("TRANSFER", result.steps)
    assert (result.source_engine, result.target_engine) == ("mxnet", "torch")
    assert result.steps["target"] is not None
    assert result.steps["scratch"] is None or result.steps["target"] < result.steps["scratch"]


def test_the_sentinel_on_the_broker_scores_each_published_version_while_the_learner_trains(tmp_path, kafka_bootstrap):
    prefixes = fresh("actors-sentinel", "sentinel.")
    result = run_sentinel(on_broker(tmp_path, "actors_sentinel.yaml", prefixes, kafka_bootstrap), str(tmp_path / "w"))
    versions = [found["model_version"] for found in result.results["learner"]]
    last = result.reports["learner"]["step"]                          # 5 epochs of 1,258 records: 197 steps
    assert last == 197 and versions == [50, 100, 150, 197]
    assert all(found["rows"] == 539 for found in result.results["learner"])
    assert result.results["learner"][-1]["accuracy"] >= SENTINEL_LEVEL and result.reports["sentinel"]["duplicates"] == 0
