"""conf/cluster.yaml: the quickstart's pipeline against the local services (the Spark standalone master,
HDFS, Kafka, PostgreSQL), run as a user would with ``h3spark run``. The test points the config at the
running services and gives the run its own HDFS folder, topics and table."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from h3spark.storage import filesystem_for, is_published, join_uri, read_manifest
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def run_root(hdfs_service):
    """A fresh HDFS folder for the run's datasets and checkpoints, removed afterwards."""
    root = f"{hdfs_service.uri}/tests/cluster-quickstart-{uuid.uuid4().hex[:8]}"
    yield root
    filesystem_for(root, hdfs_service.webhdfs_url).delete(root)


def _config(path: Path, tag: str, root: str, services: dict) -> dict:
    """conf/cluster.yaml pointed at these services, with this run's folder, topics and table."""
    data = yaml.safe_load((ROOT / "conf" / "cluster.yaml").read_text())
    data["spark"]["master"] = services["spark"]
    data["storage"]["webhdfs_url"] = services["webhdfs"]
    data["dataset"]["uri"] = join_uri(root, "datasets", "digits")
    data["training"]["checkpoint_uri"] = join_uri(root, "checkpoints")
    actors = data["actors"]
    actors["bootstrap_servers"] = services["kafka"]
    raw, soft = f"{tag}.digits", f"{tag}.soft"
    actors["producers"]["digits"]["topic"] = raw
    teacher, student = actors["actors"]["teacher"], actors["actors"]["student"]
    teacher.update(inputs={raw: "predict"}, outputs={"predictions": soft})
    teacher["model"]["checkpoint"], teacher["pipeline"]["uri"] = data["training"]["checkpoint_uri"], data["dataset"]["uri"]
    student["inputs"] = {soft: "train"}
    data["predict"]["output"]["jdbc"].update(url=services["postgres"], table=f"{tag}_predictions",
                                             password_file=services["password_file"])
    path.write_text(yaml.safe_dump(data))
    return data


@pytest.mark.timeout(1260)  # the run itself is given 1200 s (its subprocess timeout); the suite's default is 300 s
def test_the_cluster_config_runs_every_stage_on_the_services(tmp_path, run_root, spark_cluster, kafka_bootstrap,
                                                              hdfs_service, postgres_service):
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    from h3spark.services import postgres_password_file
    from tests.integration.postgres.pg import Postgres

    tag = f"cq_{uuid.uuid4().hex[:8]}"
    password_file = postgres_password_file()
    services = {"spark": spark_cluster, "webhdfs": hdfs_service.webhdfs_url, "kafka": kafka_bootstrap,
                "postgres": postgres_service.uri, "password_file": str(password_file)}
    config = tmp_path / "cluster.yaml"
    data = _config(config, tag, run_root, services)
    postgres = Postgres(url=postgres_service.uri, port=int(postgres_service.uri.rsplit(":", 1)[1].split("/", 1)[0]),
                        password_file=password_file)
    try:
        done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "run", str(config), "--workdir",
                               str(tmp_path / "w")], cwd=ROOT, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        out = done.stdout
        assert re.search(rf"spark master\s+{re.escape(spark_cluster)}", out), out[-3000:]
        dataset = data["dataset"]["uri"]
        fs = filesystem_for(dataset, hdfs_service.webhdfs_url)
        assert is_published(dataset, fs) and read_manifest(dataset, fs)["rows"] == 1797
        assert is_published(f"{dataset}_evaluation", fs)
        tested = re.search(r"test accuracy\s+([01]\.\d+) on \d+ rows of the test split", out)
        assert tested and float(tested.group(1)) > 0.8, out[-3000:]
        assert re.search(r"engine\s+mxnet kvstore=dist_sync workers=2 servers=1", out)
        assert fs.listdir(data["training"]["checkpoint_uri"])
        for actor in ("teacher", "student"):
            assert re.search(rf"actor {actor}\s+stopped, .*held-out accuracy [01]\.\d+", out), out[-3000:]
        count, correct = postgres.query(f"SELECT count(*), sum((prediction = label)::int) FROM {tag}_predictions")[0].split("|")
        assert int(count) == 1797 and int(correct) > 0.8 * 1797
        assert re.search(rf"predictions\s+.*{tag}_predictions", out), out[-3000:]
    finally:
        for table in postgres.tables_like(f"{tag}_predictions%"):
            postgres.query(f"DROP TABLE IF EXISTS {table}")
