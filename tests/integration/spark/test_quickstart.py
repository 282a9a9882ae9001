"""The quickstart as the README runs it: ``h3spark run conf/quickstart.yaml`` on local Spark, every stage's
output where the summary says it is."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from h3spark.storage import is_published, read_manifest, resolve_published
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]
STAGES = ["preprocess", "experiment", "training", "evaluate", "actors", "predict"]


def _h3spark() -> list[str]:
    script = Path(sys.executable).with_name("h3spark")  # the console script the README runs
    return [str(script)] if script.exists() else [sys.executable, "-m", "h3spark.cli._main"]


def _summary(stdout: str) -> dict[str, list[str]]:
    """The end summary's rows (label -> values; 'next: report' and others repeat)."""
    rows: dict[str, list[str]] = {}
    for line in stdout.split("h3spark run quickstart: done", 1)[1].splitlines():
        match = re.match(r"^  (\S.*?)  +(\S.*)$", line)
        if match:
            rows.setdefault(match.group(1).strip(), []).append(match.group(2))
    return rows


@pytest.mark.timeout(960)  # the run itself is given 900 s (its subprocess timeout); the suite's default is 300 s
def test_the_quickstart_runs_every_stage_and_says_where_each_output_went(tmp_path):
    require(shutil.which("java") is not None, "Java 17 is needed for Spark; install a JDK (apt-get install openjdk-17-jdk-headless)")
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    workdir = tmp_path / "qs"
    done = subprocess.run([*_h3spark(), "run", "conf/quickstart.yaml", "--workdir", str(workdir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for index, stage in enumerate(STAGES, start=1):
        assert f"h3spark run quickstart: stage {index}/{len(STAGES)} {stage} (" in out
    rows = _summary(out)

    dataset = f"file://{workdir}/datasets/digits"
    assert rows["dataset"] == [dataset] and is_published(dataset)
    manifest = read_manifest(dataset)
    assert manifest["rows"] == 1797 and set(manifest["splits"]) == {"train", "validation", "test"}
    checks = json.loads(Path(resolve_published(dataset)[len("file://"):], "_expectations.json").read_text())
    assert checks["failed"] == 0 and checks["checked"] >= 5
    assert rows["expectations"][0].startswith(f"{checks['checked']} of {checks['checked']} hold; report ")

    experiment = workdir / "experiments" / "quickstart"
    assert rows["experiment"] == [f"file://{experiment}"]
    results = json.loads((experiment / "results.json").read_text())
    assert len(results) == 4 and {record["status"] for record in results} == {"completed"}
    assert len(list(experiment.rglob("events.out.tfevents.*"))) >= 5  # every trial's scalars, and the HParams setup
    best = json.loads((experiment / "best.json").read_text())["best"]
    assert rows["trained"] == [f"the best trial's {{'lr': {best['param_lr']}, 'hidden': {best['param_hidden']}}} "
                               f"(trial {best['trial_id']})"]

    assert rows["engine"] == ["mxnet kvstore=dist_sync workers=2 servers=1"]
    assert list((workdir / "checkpoints" / "quickstart").rglob("model.safetensors"))
    assert list((workdir / "logs" / "quickstart").rglob("events.out.tfevents.*"))

    evaluation = f"{dataset}_evaluation"
    assert rows["evaluation"] == [evaluation] and is_published(evaluation)
    accuracy, labelled = re.match(r"([01]\.\d+) on (\d+) rows of the test split", rows["test accuracy"][0]).groups()
    assert float(accuracy) > 0.8 and int(labelled) == manifest["splits"]["test"]["rows"]

    assert rows["actors"] == [f"file://{workdir}/actors/quickstart"]
    for actor in ("teacher", "student"):
        assert re.match(r"stopped, .*held-out accuracy [01]\.\d+ \(\d+ rows\)", rows[f"actor {actor}"][0]), rows
        assert list((workdir / "actors" / "quickstart" / actor / "snapshots").rglob("*"))

    predicted = f"file://{workdir}/datasets/digits_predicted"
    assert rows["predictions"] == [predicted] and is_published(predicted)
    assert pq.read_table(resolve_published(predicted)[len("file://"):]).num_rows == 1797
    assert re.match(r"1797 rows predicted, 0 quarantined, accuracy [01]\.\d+ on 1797 labelled rows$", rows["predicted"][0])

    assert rows["next: tensorboard"] == [f"h3spark tensorboard file://{experiment}",
                                         f"h3spark tensorboard {workdir}/logs/quickstart"]
    assert rows["next: web page"][0].startswith(f"h3spark web conf/quickstart.yaml --workdir {workdir}")
    assert rows["next: report"] == [f"h3spark report file://{experiment}", f"h3spark report {workdir}/logs/quickstart",
                                    f"h3spark report file://{workdir}/actors/quickstart"]
    assert re.match(r"\d+\.\d s$", rows["total time"][0])
