"""The launcher on local Spark: the tools/launch.py contract, results, failures, no orphans."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from h3spark.cli import main
from h3spark.errors import JobFailedError, UsageError
from h3spark.train import distributed, launch
from h3spark.train._procs import marked_processes

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = str(ROOT / "examples" / "mxnet_dist_mlp.py")


def assert_no_orphans(launch_id: str, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while marked_processes(launch_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(launch_id) == [], "ps-lite processes outlived the launch"


def push_pull_sum():
    """Every worker pushes rank + 1 and pulls the sum over workers."""
    import os

    import mxnet as mx

    kv = mx.kv.create(os.environ["H3SPARK_KVSTORE"])
    kv.init("x", mx.nd.zeros((2,)))
    kv.push("x", mx.nd.ones((2,)) * (kv.rank + 1))
    out = mx.nd.zeros((2,))
    kv.pull("x", out=out)
    return {"rank": kv.rank, "num_workers": kv.num_workers, "sum": out.asnumpy().tolist()}


def fail_on_rank_1():
    import mxnet as mx

    kv = mx.kv.create("dist_sync")
    if kv.rank == 1:
        print("about to fail on purpose", flush=True)
        raise RuntimeError("boom from rank 1")
    kv.init("x", mx.nd.zeros((1,)))
    kv.push("x", mx.nd.ones((1,)))  # blocks: rank 1 never pushes
    return "unreachable"


def test_cli_launch_runs_a_plain_mxnet_script_unchanged(spark, capsys):
    code = main(["launch", "-n", "2", "-s", "1", "--", sys.executable, EXAMPLE, "--rows", "2048", "--epochs", "1"])
    assert code == 0
    results = [json.loads(line.split("RESULT ", 1)[1]) for line in capsys.readouterr().out.splitlines() if "RESULT " in line]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert {r["num_workers"] for r in results} == {2}
    assert all(r["val_accuracy"] > 0.5 for r in results)


def test_distributed_returns_every_ranks_value(spark):
    launch_id = uuid.uuid4().hex
    results = distributed(push_pull_sum, num_workers=2, num_servers=1, kvstore="dist_sync", spark=spark,
                          env={"H3SPARK_LAUNCH_ID": launch_id}, echo=False)
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["sum"] == [3.0, 3.0] for r in results)
    assert_no_orphans(launch_id)


def test_a_raising_worker_fails_the_job_fast_with_rank_role_host_and_tail(spark):
    launch_id = uuid.uuid4().hex
    started = time.monotonic()
    with pytest.raises(JobFailedError) as caught:
        distributed(fail_on_rank_1, num_workers=2, num_servers=1, spark=spark, env={"H3SPARK_LAUNCH_ID": launch_id}, echo=False)
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert "worker" in message and "on host" in message and "exited with code 1" in message
    assert "boom from rank 1" in message and "about to fail on purpose" in message
    assert_no_orphans(launch_id)


def test_a_killed_server_fails_the_job(spark):
    launch_id = uuid.uuid4().hex
    script = ("import mxnet as mx, os, signal, time\n"
              "kv = mx.kv.create('dist_sync')\n"
              "if kv.rank == 0:\n"
              "    pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
              "    for p in pids:\n"
              "        try: env = open(f'/proc/{p}/environ','rb').read().split(b'\\0')\n"
              "        except OSError: continue\n"
              "        if b'DMLC_ROLE=server' in env and b'H3SPARK_LAUNCH_ID=" + launch_id + "' in env: os.kill(int(p), signal.SIGKILL)\n"
              "time.sleep(120)\n")
    started = time.monotonic()
    with pytest.raises(JobFailedError, match=r"server 0 on host .* killed by signal 9"):
        launch([sys.executable, "-c", script], num_workers=2, num_servers=1, spark=spark,
               env={"H3SPARK_LAUNCH_ID": launch_id}, echo=False)
    assert time.monotonic() - started < 60
    assert_no_orphans(launch_id)


def test_too_few_task_slots_fails_within_30_s(spark):
    started = time.monotonic()
    with pytest.raises(UsageError, match=r"needs 3 task slots .* has 2"):
        launch([sys.executable, "-c", "pass"], num_workers=3, num_servers=1, spark=spark)
    assert time.monotonic() - started < 30
