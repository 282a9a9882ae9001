"""Ctrl-C on ``h3spark launch`` (SIGINT, locally and on Spark) ends it and leaves no ps-lite process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from h3spark.train._procs import marked_processes

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = str(ROOT / "examples" / "mxnet_dist_mlp.py")
ROLES = 4  # scheduler, server, 2 workers


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def role_pids(launch_id: str) -> list[int]:
    """The ps-lite roles of this launch: processes carrying the marker whose command is python, not the CLI."""
    pids = []
    for pid in marked_processes(launch_id):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"h3spark.cli._main" not in command and b"java" not in command[0]:
            pids.append(pid)
    return pids


@pytest.mark.parametrize("where", ["--local", "spark"])
def test_ctrl_c_ends_the_launch_and_leaves_no_ps_lite_process(where, request):
    if where == "spark":
        request.getfixturevalue("spark")  # Java must be there (skip or fail as the fixture says)
    launch_id = uuid.uuid4().hex
    local = ["--local"] if where == "--local" else []
    launch = subprocess.Popen([sys.executable, "-m", "h3spark.cli._main", "launch", "-n", "2", "-s", "1", *local, "--",
                               sys.executable, EXAMPLE, "--rows", "200000", "--epochs", "50"],
                              cwd=ROOT, env={**os.environ, "H3SPARK_LAUNCH_ID": launch_id},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: len(role_pids(launch_id)) >= ROLES, 120), "the roles did not all start"
        time.sleep(2)  # let the workers train
        launch.send_signal(signal.SIGINT)
        _, err = launch.communicate(timeout=30)
        assert launch.returncode == 130, err.decode()[-2000:]
        assert b"h3spark: interrupted" in err
        assert wait_for(lambda: not marked_processes(launch_id), 10), f"left behind: {marked_processes(launch_id)}"
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.wait()
