"""``h3spark gates``: the showcase config (conf/gates_digits.yaml) runs, shrunk by --set, printing its
per-epoch lines and summary; config and usage mistakes exit 2 without a traceback."""

from __future__ import annotations

import re
from pathlib import Path

from h3spark.cli import main

CONF = str(Path(__file__).resolve().parents[3] / "conf" / "gates_digits.yaml")
SMALL = ["--set", "gates.data.rows=300", "--set", "gates.sentinels.train-1.epochs=2", "--set",
         "gates.sentinels.train-2.epochs=2", "--set", "gates.sentinels.val={kind: validation, every_batches: 4}"]


def test_the_showcase_trains_with_two_training_sentinels_a_validation_and_a_test_sentinel(tmp_path, capsys):
    assert main(["gates", CONF, "--workdir", str(tmp_path), *SMALL]) == 0
    out = capsys.readouterr().out
    epochs = re.findall(r"^(train-[12]) epoch (\d) loss \d+\.\d{4} acc [01]\.\d{4} \d+\.\d s  versions g1 \S+ g2 \S+ g3 \S+$",
                        out, re.M)
    assert sorted(epochs) == [("train-1", "1"), ("train-1", "2"), ("train-2", "1"), ("train-2", "2")]
    assert re.search(r"^val validation 1 loss .* 60 rows", out, re.M)
    assert re.search(r"^test test 1 loss \S+ acc \S+ 60 rows .* versions g1 12 g2 12 g3 12$", out, re.M)
    assert "h3spark gates gates_digits: done in" in out
    assert re.search(r"gate g1 +12 updates, delay p50 \d+ p99 \d+", out)


def test_config_mistakes_exit_2_naming_the_key(tmp_path, capsys):
    assert main(["gates", CONF, "--workdir", str(tmp_path), "--set", "gates.placement=processes"]) == 2
    assert "placement 'processes' runs gates outside this process" in capsys.readouterr().err
    assert main(["gates", CONF, "--workdir", str(tmp_path), "--set", "gates.cut.g3=[flat, logits]"]) == 2
    assert "every layer of the spec once" in capsys.readouterr().err
    assert main(["gates", CONF, "--workdir", str(tmp_path), "--set", "gates.training.total_steps=0"]) == 2
    assert "gates.training.total_steps: the cosine schedule needs total_steps >= 1" in capsys.readouterr().err
    bare = tmp_path / "bare.yaml"
    bare.write_text("name: bare\n")
    assert main(["gates", str(bare)]) == 2
    assert "has no gates: section" in capsys.readouterr().err
