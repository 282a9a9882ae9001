"""The gates showcase (conf/gates_digits.yaml) in full, in one process on the in-process bus: a CNN on
digits in 3 gates, 2 training sentinels and a validation sentinel, reaches its stated level, test
accuracy >= 0.90 (8 epochs, adam, weight stashing, 4 batches in flight per sentinel)."""

from pathlib import Path

from h3spark.config import load_config
from h3spark.gates import GateNetwork
from h3spark.train import validation_context

CONF = Path(__file__).resolve().parents[3] / "conf" / "gates_digits.yaml"
LEVEL = 0.90


def test_the_showcase_reaches_its_stated_test_accuracy(torch_here, tmp_path):
    config = load_config(CONF, overrides=["gates.sentinels.val={kind: validation, every_batches: 34}"],
                         context=validation_context())
    lines = []
    result = GateNetwork.from_config(config, str(tmp_path), progress=lines.append).run(timeout_s=600)
    assert not result.failed, result.errors
    assert len(result.epochs["train-1"]) == len(result.epochs["train-2"]) == 8
    assert result.scores["val"] and result.final_score("test")["accuracy"] >= LEVEL, "\n".join(lines)
    assert result.delay_percentile(99, "g1") >= 1  # the pipeline was full: the first gate's gradients came late
