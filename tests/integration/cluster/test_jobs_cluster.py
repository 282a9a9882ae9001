"""The spark-submit jobs in jobs/, each submitted with the real spark-submit to the standalone cluster
(``h3spark services``): preprocess publishes the digits once for the module; experiment searches on them,
train trains MXNet dist_sync on them, predict applies that model and the dataset's pipeline, actors runs a
network over Kafka with its actor as a Spark task; a bad config exits 2 with its message through spark-submit."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from h3spark.storage import local_path, read_manifest, resolve_published
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]
DATASET = "datasets/digits_preprocessed"  # conf/preprocess_example.yaml's dataset.uri
DIGITS_ROWS = 1797


def _output(done: subprocess.CompletedProcess) -> str:
    """What the job said: spark-submit hands the Python process's stderr to its own stdout."""
    return done.stdout[-4000:] + done.stderr[-4000:]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The one workdir the jobs of this module share (the dataset, the trained model, the predictions)."""
    return tmp_path_factory.mktemp("jobs")


@pytest.fixture(scope="module")
def preprocessed(spark_cluster, spark_submit, work) -> str:
    """jobs/preprocess.py run once: the URI of the published digits (with its fitted pipeline)."""
    done = spark_submit(spark_cluster, "jobs/preprocess.py", "--config", "conf/preprocess_example.yaml",
                        "--workdir", str(work))
    assert done.returncode == 0, _output(done)
    assert "h3spark preprocess preprocess-example: done" in done.stdout
    return f"file://{work}/{DATASET}"


@pytest.fixture(scope="module")
def trained(spark_cluster, spark_submit, work, preprocessed) -> Path:
    """jobs/train.py run once on the preprocessed digits: the run's checkpoints folder."""
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    done = spark_submit(spark_cluster, "jobs/train.py", "--config", "conf/train_mxnet_example.yaml", "--workdir",
                        str(work), "--set", f"dataset.uri={DATASET}", "--set", "training.epochs=3", timeout_s=420)
    assert done.returncode == 0, _output(done)
    assert "h3spark train train_mxnet_example: done" in done.stdout
    return work / "checkpoints" / "train_mxnet_example"


def test_preprocess_job_publishes_the_dataset_with_its_manifest(preprocessed):
    manifest = read_manifest(preprocessed)
    assert manifest["rows"] == DIGITS_ROWS and manifest["label"] == "label" and manifest["pipeline"]
    assert sorted(manifest["splits"]) == ["test", "train", "validation"]
    assert manifest["columns"]["features"]["shape"] == [64]
    assert sum(item["rows"] for split in manifest["splits"].values() for item in split["files"]) == DIGITS_ROWS
    assert pq.read_table(local_path(resolve_published(preprocessed))).num_rows == DIGITS_ROWS


def test_experiment_job_searches_on_the_dataset_and_writes_the_best_trial(spark_cluster, spark_submit, work,
                                                                         preprocessed):
    done = spark_submit(spark_cluster, "jobs/experiment.py", "--config", "conf/experiment_example.yaml",
                        "--workdir", str(work), "--set", f"dataset.uri={DATASET}", "--set", "experiment.space.C=[0.1, 1.0]")
    assert done.returncode == 0, _output(done)
    assert "trials: 2 completed" in done.stdout
    best = json.loads((work / "experiments" / "experiment_example" / "best.json").read_text())
    assert best["best"]["param_C"] in (0.1, 1.0) and best["best"]["metric_accuracy"] > 0.85


@pytest.mark.timeout(600)  # spark-submit, then a barrier stage whose tasks start the ps-lite roles and import mxnet
def test_train_job_trains_on_the_cluster_and_saves_the_model(trained):
    saved = sorted(trained.rglob("model.safetensors"))
    assert saved, f"no model.safetensors under {trained}"
    assert all(path.stat().st_size > 0 for path in saved)


@pytest.mark.timeout(600)  # trains first when run alone
def test_predict_job_applies_the_trained_model_and_the_pipeline(spark_cluster, spark_submit, work, preprocessed, trained):
    # the model: the config's training run's checkpoints; the rows: its source (the raw digits)
    done = spark_submit(spark_cluster, "jobs/predict.py", "--config", "conf/train_mxnet_example.yaml",
                        "--workdir", str(work), "--pipeline", DATASET, "--output", "datasets/digits_scored", timeout_s=400)
    assert done.returncode == 0, _output(done)
    assert "h3spark predict train_mxnet_example: done" in done.stdout
    scored = f"file://{work}/datasets/digits_scored"
    manifest = read_manifest(scored)
    assert manifest["rows"] == DIGITS_ROWS and manifest["pipeline_from"] == preprocessed
    assert manifest["model"]["engine"] == "mxnet" and manifest["accuracy"] > 0.5
    table = pq.read_table(local_path(resolve_published(scored)))
    assert table.num_rows == DIGITS_ROWS
    assert {"label", "prediction", "probabilities"} <= set(table.column_names)


@pytest.mark.timeout(600)
def test_actors_job_runs_the_network_with_its_actor_as_a_spark_task(spark_cluster, spark_submit, kafka_bootstrap,
                                                                    tmp_path):
    from h3spark.actors import decode
    from h3spark.actors._registry import read_state
    from h3spark.transport.kafka import read_topic

    name = f"online-job-{uuid.uuid4().hex[:8]}"
    data = yaml.safe_load((ROOT / "conf" / "actors_online.yaml").read_text())
    data["name"] = name  # no spark: section: the master spark-submit was given decides where the actor runs
    data["actors"].update(transport="kafka", bootstrap_servers=kafka_bootstrap)
    data["actors"]["producers"]["digits"]["topic"] = f"{name}.raw"
    data["actors"]["actors"]["learner"].update(inputs={f"{name}.raw": "train"}, outputs={"parameters": f"{name}.weights"})
    config = tmp_path / "network.yaml"
    config.write_text(yaml.safe_dump(data))
    done = spark_submit(spark_cluster, "--conf", "spark.ui.showConsoleProgress=false", "jobs/actors.py", "--config",
                        str(config), "--workdir", str(tmp_path / "w"), timeout_s=540)
    assert done.returncode == 0, _output(done)
    assert "actor learner: launched (spark)" in done.stdout
    state = read_state(f"file://{tmp_path}/w/actors/{name}")
    report = state["actors"]["learner"]
    assert state["launcher"] == "spark" and report["state"] == "stopped" and report["pid"] != state["supervisor"]["pid"]
    assert report["evaluated"]["rows"] > 0 and report["evaluated"]["accuracy"] >= 0.85
    published = [decode(record.value) for record in read_topic(kafka_bootstrap, f"{name}.weights", timeout_s=60)]
    assert published and {envelope.sender for envelope in published} == {"learner"}


@pytest.mark.parametrize("job", ["actors", "predict"])  # every job, in process: tests/unit/test_jobs.py
def test_a_job_with_a_bad_config_exits_2_with_the_problem_and_no_traceback(spark_cluster, spark_submit, tmp_path, job):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntraning: {}\n")
    done = spark_submit(spark_cluster, f"jobs/{job}.py", "--config", str(bad), "--workdir", str(tmp_path))
    assert done.returncode == 2, _output(done)
    said = done.stdout + done.stderr
    assert re.search(rf"invalid config {re.escape(str(bad))}", said), said[-3000:]
    assert "line 2  traning: unknown key. Did you mean 'training'?" in said
    assert "Traceback" not in said
