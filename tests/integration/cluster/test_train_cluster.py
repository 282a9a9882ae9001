"""``h3spark launch --master spark://...`` runs the plain MXNet dist script on the standalone cluster."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]


def test_launch_runs_the_plain_mxnet_script_on_the_standalone_cluster(spark_cluster):
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "launch", "--master", spark_cluster, "-n", "2", "-s", "1",
                           "--start-timeout", "120", "--", sys.executable, str(ROOT / "examples" / "mxnet_dist_mlp.py"),
                           "--rows", "4096", "--epochs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line.split("RESULT ", 1)[1]) for line in done.stdout.splitlines() if "RESULT " in line]
    assert sorted(r["rank"] for r in results) == [0, 1] and {r["num_workers"] for r in results} == {2}, done.stdout[-2000:]
    assert min(r["val_accuracy"] for r in results) > 0.9
    assert "h3spark launch: 2 workers finished" in done.stdout
