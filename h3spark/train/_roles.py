"""Which task runs which role, and the environment each role gets.

The environment is the one MXNet's ``tools/launch.py --launcher local`` gives
(``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``, ``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_SERVER``,
``DMLC_NUM_WORKER``), so a script that runs under it runs unchanged here. torch
jobs get ``MASTER_ADDR``/``MASTER_PORT``/``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import Iterator

KINDS = ("ps", "torch")


@dataclass(frozen=True)
class RolePlan:
    """The roles one task (``task``) of ``num_tasks`` starts."""

    task: int
    scheduler: bool
    servers: tuple[int, ...]
    worker: int


def plan_roles(task: int, num_tasks: int, num_servers: int) -> RolePlan:
    """Task ``task`` runs worker ``task``; task 0 runs the scheduler; servers go round-robin."""
    servers = tuple(server for server in range(num_servers) if server % num_tasks == task)
    return RolePlan(task=task, scheduler=task == 0, servers=servers, worker=task)


def ps_env(role: str, root_uri: str, root_port: int, num_workers: int, num_servers: int,
           node_host: str | None = None) -> dict[str, str]:
    """The DMLC_* variables of one ps-lite role, as tools/launch.py sets them."""
    env = {
        "DMLC_ROLE": role,
        "DMLC_PS_ROOT_URI": root_uri,
        "DMLC_PS_ROOT_PORT": str(root_port),
        "DMLC_NUM_SERVER": str(num_servers),
        "DMLC_NUM_WORKER": str(num_workers),
    }
    if node_host:
        env["DMLC_NODE_HOST"] = node_host
    return env


def torch_env(rank: int, world_size: int, master_addr: str, master_port: int, local_rank: int = 0,
              local_world_size: int = 1) -> dict[str, str]:
    """The variables torch.distributed's env:// rendezvous reads (as torchrun sets them)."""
    return {
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
        "LOCAL_WORLD_SIZE": str(local_world_size),
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago. Callers retry when the bind that follows fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def reserved_port(host: str = "127.0.0.1") -> Iterator[socket.socket]:
    """A socket bound to a free port of ``host``, not listening, with SO_REUSEADDR: while it is open
    the kernel gives the port to no other ``bind`` to port 0 nor to an outgoing connection, yet a
    server that also sets SO_REUSEADDR (ZeroMQ's listeners, so ps-lite's scheduler) binds and listens
    on it. Held from before the server starts until the launch ends, so no one takes the port between."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        yield sock
    finally:
        sock.close()


def bindable_host(address: str) -> str:
    """The IP a task advertises: ``address`` from the barrier task infos, without its port."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
    return host.strip("[]") or "127.0.0.1"
