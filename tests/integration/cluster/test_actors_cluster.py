"""``h3spark actors`` with a cluster master: each actor runs as a long-running Spark task on the standalone
cluster's executors, over the real broker (showcase (a) there)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from h3spark.actors._registry import read_state

ROOT = Path(__file__).resolve().parents[3]


def test_a_network_on_the_cluster_runs_each_actor_as_a_spark_task(tmp_path, spark_cluster, kafka_bootstrap):
    data = yaml.safe_load((ROOT / "conf" / "actors_online.yaml").read_text())
    name = data["name"] = f"online-cluster-{uuid.uuid4().hex[:8]}"
    data["spark"] = {"master": spark_cluster, "conf": {"spark.ui.showConsoleProgress": False}}
    data["actors"].update(transport="kafka", bootstrap_servers=kafka_bootstrap)
    data["actors"]["producers"]["digits"]["topic"] = f"{name}.raw"
    learner = data["actors"]["actors"]["learner"]
    learner.update(inputs={f"{name}.raw": "train"}, outputs={"parameters": f"{name}.weights"})
    config = tmp_path / "network.yaml"
    config.write_text(yaml.safe_dump(data))
    done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "actors", str(config), "--workdir",
                           str(tmp_path / "w")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "actor learner: launched (spark)" in done.stdout
    state = read_state(f"file://{tmp_path}/w/actors/{name}")
    report = state["actors"]["learner"]
    assert state["launcher"] == "spark" and report["state"] == "stopped"
    assert report["evaluated"]["accuracy"] >= 0.90 and report["pid"] != state["supervisor"]["pid"]
