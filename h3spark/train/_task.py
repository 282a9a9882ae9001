"""What one launch task does: start its roles as children, watch them, report back.

This runs inside a Spark barrier task (or any process with an ``all_gather``), never
imports mxnet or torch itself, and always stops its children before returning.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Callable

from h3spark.train._child import error_path
from h3spark.errors import TaskFailure
from h3spark.train._procs import ProcessSet, RoleFailure, start_role
from h3spark.train._roles import free_port, plan_roles, ps_env, reserved_port, torch_env

logger = logging.getLogger(__name__)

# Roles that are not the user's script only need to import mxnet to run their loop.
PS_ROLE_COMMAND = [sys.executable, "-c", "import mxnet"]
WORKER_PYTHON_ENV = "H3SPARK_WORKER_PYTHON"


@dataclass
class LaunchSpec:
    """Everything a task needs, sent once from the driver (JSON-friendly but the payload)."""

    kind: str                      # "ps" (MXNet ps-lite), "torch" or "plain" (no rendezvous)
    command: list[str]
    num_workers: int
    num_servers: int = 0
    env: dict[str, str] = field(default_factory=dict)
    payload: bytes | None = None   # cloudpickled train_fn of distributed(); None for launch
    echo: bool = True
    # The driver's working directory: workers start there when their host has it (the same machine, as with
    # a Spark Connect server's or a local master's tasks), so relative paths in the command mean the same.
    cwd: str = field(default_factory=os.getcwd)


class LaunchFailed(RuntimeError):
    """Raised in a task when one of its roles failed; the message is the RoleFailure JSON."""


def run_task(spec: LaunchSpec, task: int, host: str, all_gather: Callable[[str], list[str]], channel,
             cancelled=None) -> dict:
    """Run this task's roles to the end; return ``{"task", "result"}`` and report ``done``. A failed
    role is reported on ``channel`` (with the exception its train_fn raised, if any) and raised as LaunchFailed."""
    try:
        result = _run_roles(spec, task, host, all_gather, channel, cancelled)
    except LaunchFailed as failed:
        channel.send("failure", **json.loads(str(failed)))
        raise
    channel.send("done")
    return {"task": task, "result": result}


def _run_roles(spec: LaunchSpec, task: int, host: str, all_gather, channel, cancelled):
    with ExitStack() as held, ProcessSet() as procs, tempfile.TemporaryDirectory(prefix="h3spark-task-") as tmp:
        on_line = _forward(channel) if spec.echo else None
        root = _agree_on_root(spec, task, host, all_gather, procs, on_line, held)
        channel.send("started", host=host)
        worker_env = _start_helpers(spec, task, host, root, procs, on_line)
        command, result_path = _worker_command(spec, tmp)
        env = {**spec.env, **worker_env, "H3SPARK_TASK": str(task), "H3SPARK_NUM_WORKERS": str(spec.num_workers),
               **_exit_on_error_hook(spec)}
        procs.add(start_role("worker", task, command, env, on_line, cwd=spec.cwd if os.path.isdir(spec.cwd) else None))
        failure = procs.wait(roles=("worker", "scheduler", "server"), cancelled=cancelled)
        if failure is not None:
            raise LaunchFailed(json.dumps(_with_error(failure, result_path).to_json()))
        return _read_result(result_path)


def _with_error(failure: RoleFailure, result_path: str | None) -> RoleFailure:
    """The failure, with the type and message of the exception the worker's train_fn raised (if it wrote one)."""
    if failure.role != "worker" or result_path is None or not os.path.exists(error_path(result_path)):
        return failure
    with open(error_path(result_path), encoding="utf-8") as handle:
        error = json.load(handle)
    return replace(failure, error_type=str(error.get("error_type", "")), message=str(error.get("message", "")))


def task_error(task: int, host: str, error: BaseException) -> RoleFailure:
    """The failure of a task's own code (not of a role it started), with the tail of its traceback."""
    failure = TaskFailure.from_exception("task", task, error, host)
    return RoleFailure("task", task, host, 1, failure.tail, failure.error_type, failure.message)


def _forward(channel):
    def on_line(role: str, rank: int, line: str) -> None:
        channel.send("line", role=role, rank=rank, line=line.rstrip("\n"))
    return on_line


def _agree_on_root(spec, task, host, all_gather, procs, on_line, held: ExitStack) -> dict:
    """Task 0 picks the rendezvous port (starting the scheduler for ps); all tasks learn it."""
    mine = {"host": host}
    if task == 0 and spec.kind == "ps":
        mine = _start_scheduler(spec, host, procs, on_line, held)
    elif task == 0 and spec.kind == "torch":
        mine = {"host": host, "port": free_port(host if host != "localhost" else "127.0.0.1")}
    gathered = [json.loads(item) for item in all_gather(json.dumps(mine))]
    hosts = [item["host"] for item in gathered]
    # LOCAL_RANK picks a GPU: the tasks on one host count 0, 1, ... in task order.
    return {**gathered[0], "local_rank": hosts[:task].count(host), "local_world_size": hosts.count(host)}


def _start_scheduler(spec, host, procs, on_line, held: ExitStack) -> dict:
    """Start the scheduler on a port held for it until the task ends; don't wait for it to listen.

    The servers and workers start at once, as under tools/launch.py: ps-lite's clients retry
    until the scheduler listens, so its ``import mxnet`` overlaps theirs instead of preceding it.
    A scheduler that cannot bind all the same fails the launch, naming scheduler 0 and its output."""
    port = held.enter_context(reserved_port(host)).getsockname()[1]
    env = {**spec.env, **ps_env("scheduler", host, port, spec.num_workers, spec.num_servers, host)}
    procs.add(start_role("scheduler", 0, PS_ROLE_COMMAND, env, on_line))
    return {"host": host, "port": port}


def _start_helpers(spec, task, host, root, procs, on_line) -> dict[str, str]:
    """Start this task's servers (ps); return the environment of its worker."""
    if spec.kind == "torch":
        return torch_env(task, spec.num_workers, root["host"], root["port"], root["local_rank"], root["local_world_size"])
    if spec.kind != "ps":
        return {}
    plan = plan_roles(task, spec.num_workers, spec.num_servers)
    for server in plan.servers:
        env = {**spec.env, **ps_env("server", root["host"], root["port"], spec.num_workers, spec.num_servers, host)}
        procs.add(start_role("server", server, PS_ROLE_COMMAND, env, on_line))
    # LOCAL_WORLD_SIZE: the workers on this host, which share its cores (DataIterator's read threads)
    return {**ps_env("worker", root["host"], root["port"], spec.num_workers, spec.num_servers, host),
            "LOCAL_WORLD_SIZE": str(root["local_world_size"])}


def _worker_command(spec, tmp: str) -> tuple[list[str], str | None]:
    if spec.payload is None:
        return list(spec.command), None
    # The payload is the user's own train_fn, serialised by Spark for this job; it is
    # written with mode 0600 into a private temp dir and read back only by our child.
    fn_path = os.path.join(tmp, "train_fn.pkl")
    with open(os.open(fn_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(spec.payload)
    result_path = os.path.join(tmp, "result.json")
    return [worker_python(spec.env), "-m", "h3spark.train._child", fn_path, result_path], result_path


def worker_python(env: dict[str, str]) -> str:
    """The interpreter of a train_fn's worker child: ``H3SPARK_WORKER_PYTHON`` (e.g. a venv with
    torch beside a Spark venv without it), else the task's own."""
    return env.get(WORKER_PYTHON_ENV) or os.environ.get(WORKER_PYTHON_ENV) or sys.executable


def _exit_on_error_hook(spec) -> dict[str, str]:
    """PYTHONPATH with our sitecustomize first: a raising ps-lite worker exits instead of hanging."""
    if spec.kind != "ps":
        return {}
    hooks = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hooks")
    existing = spec.env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    return {"PYTHONPATH": os.pathsep.join(p for p in (hooks, existing) if p)}


def _read_result(path: str | None):
    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
