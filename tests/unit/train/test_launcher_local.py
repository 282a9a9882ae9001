"""The launcher's process handling without Spark: environments, results, failures, no orphans."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid

import pytest

from h3spark.errors import JobFailedError, UsageError
from h3spark.train import distributed, launch
from h3spark.train._procs import marked_processes
from h3spark.train._roles import plan_roles, ps_env


def no_orphans(launch_id: str, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while marked_processes(launch_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    return marked_processes(launch_id) == []


def torch_env_fn():
    return {key: os.environ[key] for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}


def test_ps_env_matches_mxnet_tools_launch_and_servers_spread_round_robin():
    assert ps_env("server", "10.0.0.1", 9091, 4, 2) == {
        "DMLC_ROLE": "server", "DMLC_PS_ROOT_URI": "10.0.0.1", "DMLC_PS_ROOT_PORT": "9091",
        "DMLC_NUM_SERVER": "2", "DMLC_NUM_WORKER": "4"}
    plans = [plan_roles(task, 2, 3) for task in range(2)]
    assert [p.servers for p in plans] == [(0, 2), (1,)]
    assert [p.scheduler for p in plans] == [True, False]


def test_torch_kind_gives_each_rank_the_rendezvous_and_returns_json_results():
    results = distributed(torch_env_fn, num_workers=2, framework="torch", launcher="local", echo=False)
    assert [r["RANK"] for r in results] == ["0", "1"]
    assert {r["WORLD_SIZE"] for r in results} == {"2"}
    assert len({(r["MASTER_ADDR"], r["MASTER_PORT"]) for r in results}) == 1
    assert [r["LOCAL_RANK"] for r in results] == ["0", "1"]  # one host: each task its own GPU
    assert {r["LOCAL_WORLD_SIZE"] for r in results} == {"2"}


def test_workers_start_in_the_launching_directory_where_their_host_has_it(tmp_path, monkeypatch):
    """A task runs wherever Spark starts it (a Connect server's directory); the driver's directory is
    the spec's, so ``python job/train.py`` means the same file. Where it does not exist, the task's stays."""
    from h3spark.train._local_launch import run_local
    from h3spark.train._task import LaunchSpec

    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "train.py").write_text("import os\nprint('CWD', os.getcwd())\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the tasks' own directory
    lines = []
    spec = LaunchSpec(kind="torch", command=[sys.executable, "job/train.py"], num_workers=2, cwd=str(tmp_path))
    run_local(spec, printer=lines.append)
    assert sorted(line for line in lines if "CWD" in line) == [f"[worker {rank}] CWD {tmp_path}" for rank in (0, 1)]
    lines.clear()
    spec = LaunchSpec(kind="torch", command=[sys.executable, "-c", "import os; print('CWD', os.getcwd())"], num_workers=1,
                      cwd=str(tmp_path / "not-on-this-host"))
    run_local(spec, printer=lines.append)
    assert [line for line in lines if "CWD" in line] == [f"[worker 0] CWD {elsewhere}"]


def test_a_failing_worker_fails_the_launch_with_role_rank_host_and_tail():
    launch_id = uuid.uuid4().hex
    script = "import os, sys, time\nif os.environ['RANK'] == '1':\n    print('bad rank', flush=True); sys.exit(3)\ntime.sleep(60)"
    started = time.monotonic()
    with pytest.raises(JobFailedError, match=r"(?s)worker 1 on host .+ exited with code 3.*bad rank"):
        launch([sys.executable, "-c", script], num_workers=2, kind="torch", launcher="local", echo=False,
               env={"H3SPARK_LAUNCH_ID": launch_id})
    assert time.monotonic() - started < 10
    assert no_orphans(launch_id)


def fail_on_every_rank():
    import os
    import time

    # every rank raises only once all ranks got here, so the failures really come together
    folder, world_size = os.environ["H3SPARK_TEST_BARRIER"], int(os.environ["WORLD_SIZE"])
    open(os.path.join(folder, os.environ["RANK"]), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(folder)) < world_size and time.monotonic() < deadline:
        time.sleep(0.01)
    print(f"rank {os.environ['RANK']} about to fail", flush=True)
    raise RuntimeError(f"boom from rank {os.environ['RANK']}")


def test_ranks_failing_together_are_raised_once_naming_every_rank_with_type_and_tail(tmp_path, monkeypatch):
    monkeypatch.setenv("H3SPARK_FAILURE_GRACE_S", "60")  # the driver waits for both failures however busy the host
    with pytest.raises(JobFailedError) as caught:
        distributed(fail_on_every_rank, num_workers=2, framework="torch", launcher="local", echo=False,
                    env={"H3SPARK_TEST_BARRIER": str(tmp_path)})
    message, failures = str(caught.value), caught.value.failures
    assert message.startswith("the launch failed on 2 of 2 tasks:")
    assert [(f.kind, f.index, f.error_type, f.message) for f in failures] == [
        ("worker", 0, "RuntimeError", "boom from rank 0"), ("worker", 1, "RuntimeError", "boom from rank 1")]
    assert all(f"rank {f.index} about to fail" in f.tail and f.exit == "exited with code 1" for f in failures)
    assert "worker 0 on host" in message and "worker 1 on host" in message and "rank 1 about to fail" in message


def test_plain_commands_failing_on_both_ranks_name_each_exit_code_and_output(tmp_path, monkeypatch):
    monkeypatch.setenv("H3SPARK_FAILURE_GRACE_S", "60")  # the driver waits for both failures however busy the host
    script = ("import os, sys, time\nfolder = os.environ['H3SPARK_TEST_BARRIER']\n"
              "open(os.path.join(folder, os.environ['RANK']), 'w').close()\n"
              "deadline = time.monotonic() + 120\n"
              "while len(os.listdir(folder)) < 2 and time.monotonic() < deadline:\n    time.sleep(0.01)\n"
              "print('rank', os.environ['RANK'], 'gives up', flush=True)\nsys.exit(3 + int(os.environ['RANK']))")
    with pytest.raises(JobFailedError, match=r"(?s)worker 0 on host .+ exited with code 3.*rank 0 gives up.*"
                                             r"worker 1 on host .+ exited with code 4.*rank 1 gives up"):
        launch([sys.executable, "-c", script], num_workers=2, kind="torch", launcher="local", echo=False,
               env={"H3SPARK_TEST_BARRIER": str(tmp_path)})


def test_a_killed_launcher_process_leaves_no_child_behind(tmp_path):
    import subprocess

    launch_id = uuid.uuid4().hex
    driver = ("from h3spark.train import launch\nimport sys\n"
              f"launch([sys.executable, '-c', 'import time; time.sleep(60)'], num_workers=2, kind='torch', launcher='local',"
              f" env={{'H3SPARK_LAUNCH_ID': '{launch_id}'}}, echo=False)")
    parent = subprocess.Popen([sys.executable, "-c", driver])
    deadline = time.monotonic() + 120  # a bound for a loaded machine, not a timing assertion
    while len(marked_processes(launch_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(marked_processes(launch_id)) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert no_orphans(launch_id)


def test_results_must_be_json_and_parameters_are_checked():
    with pytest.raises(JobFailedError, match="must return a JSON-serialisable value"):
        distributed(lambda: object(), num_workers=1, framework="torch", launcher="local", echo=False)
    with pytest.raises(UsageError, match="'num_workers' parameter must be an int in the range"):
        launch(["true"], num_workers=0, launcher="local")
    with pytest.raises(UsageError, match="'kvstore' parameter of distributed must be one of"):
        distributed(torch_env_fn, kvstore="dist_magic", launcher="local")
    with pytest.raises(UsageError, match="'launcher' parameter must be one of"):
        launch(["true"], num_workers=1, kind="torch", launcher="yarn")


def test_a_function_named_as_module_colon_name_travels_as_json_and_runs_in_each_worker():
    assert distributed("os.path:join", num_workers=2, framework="torch", args=("a", "b"), launcher="local", echo=False) == ["a/b", "a/b"]
    with pytest.raises(UsageError, match="must be a callable or 'module:function'. Got 'os.path.join' instead"):
        distributed("os.path.join", num_workers=1, framework="torch", launcher="local", echo=False)
    with pytest.raises(UsageError, match="sends its args as JSON"):
        distributed("os.path:join", num_workers=1, framework="torch", args=(object(),), launcher="local", echo=False)
