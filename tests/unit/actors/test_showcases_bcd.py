"""Showcases (b) distillation, (c) transfer and (d) the validation sentinel on the in-process bus, cut short
(fewer epochs, the numpy engine): the drivers run both steps of each, read what the actors published and
measure it. Their stated levels are checked on the broker at full length
(tests/integration/kafka/test_actor_showcases_bcd.py)."""

from pathlib import Path

import numpy as np
import pytest

from h3spark.actors._showcases import (distillation_robustness, run_distillation, run_sentinel, run_transfer,
                                       snapshot_model)
from h3spark.config import load_config
from h3spark.errors import ConfigError
from h3spark.train import validation_context

CONF = Path(__file__).resolve().parents[3] / "conf"


def conf(name: str, *overrides: str):
    return load_config(CONF / name, overrides=list(overrides), context=validation_context())


def test_distillation_measures_the_gap_the_student_recovers_on_the_held_out_rows_the_teacher_forwarded(tmp_path):
    teacher = conf("actors_distill_teacher.yaml", "actors.producers.digits.epochs=1")
    network = conf("actors_distill.yaml", "actors.producers.few.epochs=4")
    result = run_distillation(teacher, network, str(tmp_path))
    assert result.holdout_rows == 539 and result.temperature == 4.0
    features, labels = result.holdout
    assert features.shape == (539, 64) and 0.0 <= features.min() and features.max() <= 1.0
    errors = result.errors
    assert result.recovered == pytest.approx((errors["baseline"] - errors["student"]) / (errors["baseline"] - errors["teacher"]))
    assert result.models["student"].step == result.models["baseline"].step == 16     # 4 epochs of 4 steps of 25
    table = distillation_robustness(result, [0.0, 0.2])
    assert [(row["model"], row["gradient"]) for row in table] == [
        (role, gradient) for role in ("teacher", "student", "baseline") for gradient in ("softmax", "logits/T")]
    for row in table:   # no step after the held-out rows were scored: epsilon 0 is the error the actor reported
        assert row["error"][0] == pytest.approx(errors[row["model"]]) and row["error"][1] > row["error"][0]


def test_the_distillation_showcase_needs_its_three_actors(tmp_path):
    network = conf("actors_distill.yaml")
    network.actors.actors.pop("baseline")
    with pytest.raises(ConfigError, match="actors named teacher, student, baseline; baseline missing"):
        run_distillation(conf("actors_distill_teacher.yaml"), network, str(tmp_path))


def test_transfer_loads_the_sources_first_layer_before_the_target_trains_and_reads_both_learning_curves(tmp_path):
    source = conf("actors_transfer_source.yaml", "actors.producers.source-data.epochs=2",
                  "actors.actors.source.model.engine=numpy")
    network = conf("actors_transfer.yaml", "actors.producers.target-data.epochs=1",
                   *(f"actors.actors.{name}.model.engine=numpy" for name in ("target", "scratch")))
    result = run_transfer(source, network, str(tmp_path), level=0.5)
    versions = list(range(5, 20, 5)) + [20]                          # 629 records: 19 steps of 32 and one of 21
    assert [version for version, _ in result.curves["target"]] == versions
    assert [version for version, _ in result.curves["scratch"]] == versions
    for learner, curve in result.curves.items():
        reached = [version for version, accuracy in curve if accuracy >= 0.5]
        assert result.steps[learner] == (reached[0] if reached else None)
    source_layer = snapshot_model(source, str(tmp_path), "source").get_weights(["hidden0"])
    target, scratch = (snapshot_model(network, str(tmp_path), name) for name in ("target", "scratch"))
    assert target.frozen() == frozenset() and result.source_engine == "numpy"
    first_steps = {name: np.abs(model.get_weights(["hidden0"])["hidden0.weight"] - source_layer["hidden0.weight"]).mean()
                   for name, model in (("target", target), ("scratch", scratch))}
    assert first_steps["target"] < first_steps["scratch"]            # the target started from the source's layer


def test_the_sentinel_scores_every_tenth_version_of_the_learner_on_the_held_out_rows(tmp_path):
    network = conf("actors_sentinel.yaml", "actors.producers.digits.epochs=1",
                   "actors.actors.learner.publish_parameters.every_steps=10")
    result = run_sentinel(network, str(tmp_path))
    found = result.results["learner"]
    assert [r["model_version"] for r in found] == [10, 20, 30, 40]    # 1,258 records: 39 steps of 32 and one of 10
    assert all(r["rows"] == 539 and r["of"] == "learner" for r in found)
    assert result.reports["sentinel"]["evaluations"] == 4 and result.reports["learner"]["step"] == 40
    final = snapshot_model(conf("actors_sentinel.yaml"), str(tmp_path), "sentinel")
    assert final.step == 40 and found[-1]["accuracy"] > found[0]["accuracy"]
