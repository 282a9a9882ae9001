"""The smallest run (conf/digits_sklearn.yaml) on real local Spark: ingest, atomic publish, read back, train."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from h3spark.config import load_config
from h3spark.errors import DatasetExistsError
from h3spark.storage import read_manifest, resolve_published
from h3spark.workflow import run

ROOT = Path(__file__).resolve().parents[3]


def test_run_publishes_dataset_and_trains(spark, workdir):
    ctx = run(load_config(ROOT / "conf/digits_sklearn.yaml"), workdir, stop_spark=False)
    uri = ctx.outputs["dataset_uri"]
    assert uri == f"file://{workdir}/datasets/digits"
    manifest = read_manifest(uri)
    assert manifest["rows"] == 1797
    files = manifest["splits"]["all"]["files"]
    assert len(files) == 4 and sum(item["rows"] for item in files) == 1797
    assert spark.read.parquet(resolve_published(uri)).count() == 1797
    assert 0.9 < ctx.outputs["metrics"]["accuracy"] <= 1.0
    assert [name for name in os.listdir(workdir / "datasets") if name.startswith(".")] == []


def test_publish_refuses_to_replace_without_overwrite(spark, workdir):
    config = load_config(ROOT / "conf/digits_sklearn.yaml", ["dataset.overwrite=false", "training=null"])
    run(config, workdir, stop_spark=False)
    with pytest.raises(DatasetExistsError, match="already exists"):
        run(config, workdir, stop_spark=False)


def test_csv_source_with_a_missing_path_is_a_clear_error(spark, workdir):
    from h3spark.errors import DataError

    config = load_config(ROOT / "conf/digits_sklearn.yaml", ["source={format: csv, path: nowhere.csv}", "training=null"])
    with pytest.raises(DataError, match="nowhere.csv does not exist"):
        run(config, workdir, stop_spark=False)


def test_run_command_prints_a_computed_accuracy(tmp_path):
    done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "run", "conf/digits_sklearn.yaml",
                           "--workdir", str(tmp_path), "--set", "spark.master=local[2]"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r"accuracy\s+(0\.\d+) on (\d+) held-out rows", done.stdout)
    assert match, done.stdout
    assert float(match.group(1)) > 0.9 and int(match.group(2)) == 449
    assert f"file://{tmp_path}/datasets/digits (1797 rows)" in done.stdout

