"""A job submitted with spark-submit to the real local standalone cluster (master + 2 workers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

SCRIPT = Path(__file__).with_name("sum_of_squares_job.py")


def test_master_reports_two_alive_workers(spark_cluster):
    from h3spark.services import status

    with urllib.request.urlopen(f"{status()['spark'].http_url}/json", timeout=10) as response:
        state = json.load(response)
    assert state["status"] == "ALIVE"
    assert state["aliveworkers"] >= 2


def test_spark_submit_runs_a_python_job_on_the_cluster(spark_cluster):
    n = 10_000
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               SPARK_LOCAL_IP="127.0.0.1")
    cmd = [str(Path(sys.executable).with_name("spark-submit")), "--master", spark_cluster,
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false",
           "--total-executor-cores", "2", "--executor-memory", "1g", str(SCRIPT), str(n)]

    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)

    assert result.returncode == 0, result.stderr[-3000:]
    assert f"RESULT {sum(i * i for i in range(n))}" in result.stdout
    assert f"PYTHON {sys.executable}" in result.stdout
