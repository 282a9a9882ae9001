"""Launches through the resident Spark Connect server (``h3spark services up connect``): the launching
process starts no JVM (SPARK_HOME points nowhere, so it could not), the barrier stage runs on the
server's driver, failures and refusals read as on a classic session, a killed launcher's roles end,
and a session the server closed is replaced."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import require
from tests.integration.spark.train.conftest import publish_blobs

ROOT = Path(__file__).resolve().parents[3]
NO_JVM = {"SPARK_HOME": "/nonexistent-spark-home", "PYSPARK_SUBMIT_ARGS": "--bogus"}


def launch_cli(url: str, *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 240):
    return subprocess.run([sys.executable, "-m", "h3spark.cli._main", "launch", "--remote", url, *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **NO_JVM, **(env or {})})


def results_of(stdout: str) -> list[dict]:
    return [json.loads(line.split("RESULT ", 1)[1]) for line in stdout.splitlines() if "RESULT " in line]


@pytest.mark.timeout(300)
def test_the_plain_mxnet_script_runs_dist_sync_on_the_server_from_a_relative_path(spark_connect):
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    done = launch_cli(spark_connect, "-n", "2", "-s", "1", "--", sys.executable, "examples/mxnet_dist_mlp.py",
                      "--rows", "4096", "--epochs", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(done.stdout)
    assert sorted(r["rank"] for r in results) == [0, 1] and {r["num_workers"] for r in results} == {2}
    assert min(r["val_accuracy"] for r in results) > 0.9
    assert "h3spark launch: 2 workers finished" in done.stdout


@pytest.mark.timeout(300)
def test_h3spark_train_with_spark_remote_trains_on_the_server(spark_connect, tmp_path):
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    config = {"name": "blobs_connect", "spark": {"remote": spark_connect},
              "dataset": {"uri": publish_blobs(tmp_path)},
              "training": {"engine": "mxnet", "workers": 2, "servers": 1, "epochs": 2, "batch_size": 64, "lr": 0.05,
                           "momentum": 0.9, "seed": 3, "validation_split": "test", "params": {"hidden": [32], "classes": 4}}}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "train", str(path), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=280, env={**os.environ, **NO_JVM})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = dict(re.findall(r"^  (\S.*?)\s{2,}(\S.*)$", done.stdout, re.MULTILINE))
    assert rows["engine"] == "mxnet kvstore=dist_sync workers=2 servers=1"
    assert float(rows["validation accuracy"]) > 0.9


def test_a_failing_rank_is_named_with_its_exit_code_and_output(spark_connect):
    done = launch_cli(spark_connect, "-n", "2", "--kind", "torch", "--", sys.executable, "-c",
                      "import os, sys; print('rank', os.environ['RANK'], 'gives up'); sys.exit(3 + int(os.environ['RANK']))")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the launch failed on 2 of 2 tasks" in done.stderr
    for rank in (0, 1):
        assert re.search(rf"worker {rank} on host \S+ exited with code {3 + rank}\n +\| rank {rank} gives up", done.stderr)


def test_more_workers_than_the_servers_slots_is_refused_with_exit_2(spark_connect):
    from h3spark import services

    cores = services.ServicesConfig.from_env().connect_cores
    done = launch_cli(spark_connect, "-n", str(cores + 1), "--kind", "torch", "--", sys.executable, "-c", "pass",
                      timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"the launch needs {cores + 1} task slots at once (one per worker), more than the Spark Connect server's " \
           f"local[{cores}] has" in done.stderr


@pytest.mark.timeout(200)
def test_a_killed_launcher_leaves_no_role_running_on_the_server(spark_connect, tmp_path):
    """The server interrupts an operation whose client went away (detachedTimeout 30 s): the barrier
    tasks end, and with them their roles."""
    from h3spark.train._procs import marked_processes

    launch_id = uuid.uuid4().hex
    marker = tmp_path / "started"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "h3spark.cli._main", "launch", "--remote", spark_connect, "-n", "2", "--kind", "torch", "--",
         sys.executable, "-c", f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(600)"],
        env={**os.environ, **NO_JVM, "H3SPARK_LAUNCH_ID": launch_id}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not (marker.exists() and len(marked_processes(launch_id)) >= 3) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists() and len(marked_processes(launch_id)) >= 3, "the roles did not start within 90 s"  # and the launcher
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(10)
    deadline = time.monotonic() + 120
    while marked_processes(launch_id) and time.monotonic() < deadline:
        time.sleep(1)
    assert marked_processes(launch_id) == []


def test_a_session_the_server_closed_is_replaced_by_a_new_one(spark_connect):
    from pyspark.sql.connect.session import SparkSession as RemoteSession

    from h3spark.spark import launch_session_id
    from h3spark.spark._connect import with_session_id

    user = f"h3spark-test-{uuid.uuid4().hex[:8]}"
    closing = RemoteSession.builder.remote(with_session_id(spark_connect, launch_session_id(spark_connect, user))).create()
    closing.range(1).collect()
    closing.stop()  # releases the session on the server: its id cannot be used again
    done = launch_cli(spark_connect, "-n", "1", "--kind", "torch", "--", sys.executable, "-c", "print('ran')",
                      env={"LOGNAME": user})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "closed h3spark's shared session; this process uses a new one" in done.stderr
    assert "[worker 0] ran" in done.stdout + done.stderr
