"""Child processes of a launch: own process group, die with their parent, output tail kept.

Every role (scheduler, server, worker) runs as a child of the process that launched
it: never in the launcher itself, because an MXNet scheduler or server enters its
loop at ``import mxnet``. Three layers make sure no child outlives the launch:

- each child leads its own process group, so ``stop()`` kills it and whatever it forked;
- ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` kills the child if the launcher dies (kill -9 included);
- ``ProcessSet`` is a context manager that stops every child on any exit path.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from h3spark.errors import TaskFailure

logger = logging.getLogger(__name__)

TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGKILL this child when its parent thread exits."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the process group and ProcessSet still apply
        pass


@dataclass
class RoleProcess:
    """One running role: its Popen, where it runs and the tail of its output."""

    role: str
    rank: int
    popen: subprocess.Popen
    host: str = field(default_factory=socket.gethostname)
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{self.role} {self.rank}"

    def poll(self) -> int | None:
        return self.popen.poll()

    def output_tail(self) -> str:
        if self.reader is not None:
            self.reader.join(timeout=2)
        return "".join(self.tail).rstrip()

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after ``grace_s``."""
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.popen.pid, signal.SIGKILL)  # also stray members of the group
        self.popen.wait()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_role(role: str, rank: int, command: list[str], env: dict[str, str],
               on_line: Callable[[str, int, str], None] | None = None, cwd: str | None = None) -> RoleProcess:
    """Start ``command`` as role ``role`` with ``env`` on top of this process's environment."""
    popen = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_die_with_parent, bufsize=1, text=True, errors="replace",
    )
    process = RoleProcess(role=role, rank=rank, popen=popen)
    process.reader = threading.Thread(target=_read_output, args=(process, on_line), daemon=True,
                                      name=f"h3spark-{role}-{rank}-output")
    process.reader.start()
    logger.debug("started role=%s rank=%d pid=%d", role, rank, popen.pid)
    return process


def _read_output(process: RoleProcess, on_line) -> None:
    for line in process.popen.stdout:
        process.tail.append(line)
        if on_line is not None:
            on_line(process.role, process.rank, line)
    process.popen.stdout.close()


@dataclass
class RoleFailure:
    """What the driver needs to explain a failed role (the exception, when its train_fn raised one)."""

    role: str
    rank: int
    host: str
    returncode: int
    tail: str
    error_type: str = ""
    message: str = ""

    def exit(self) -> str:
        return f"was killed by signal {-self.returncode}" if self.returncode < 0 else f"exited with code {self.returncode}"

    def as_task_failure(self) -> TaskFailure:
        return TaskFailure(self.role, self.rank, self.error_type, self.message, self.tail or "(no output)", self.host,
                           self.exit())

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, fields: dict) -> "RoleFailure":
        return cls(**{field.name: fields[field.name] for field in dataclasses.fields(cls) if field.name in fields})


class ProcessSet:
    """The children of one task; ``with ProcessSet() as procs`` stops them all on exit."""

    def __init__(self):
        self.processes: list[RoleProcess] = []

    def __enter__(self) -> "ProcessSet":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def add(self, process: RoleProcess) -> RoleProcess:
        self.processes.append(process)
        return process

    def first_failure(self) -> RoleFailure | None:
        """The first child that ended with a non-zero status, if any."""
        for process in self.processes:
            code = process.poll()
            if code not in (None, 0):
                return RoleFailure(process.role, process.rank, process.host, code, process.output_tail())
        return None

    def wait(self, roles: tuple[str, ...], poll_s: float = 0.1, timeout_s: float | None = None,
             cancelled: threading.Event | None = None) -> RoleFailure | None:
        """Wait until every child of ``roles`` ended; return the first failure of any child."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while cancelled is None or not cancelled.is_set():
            failure = self.first_failure()
            if failure is not None:
                return failure
            if all(p.poll() is not None for p in self.processes if p.role in roles):
                return None
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"roles {roles} still running after {timeout_s} s")
            time.sleep(poll_s)
        raise InterruptedError("the launch was cancelled")

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def marked_processes(launch_id: str) -> list[int]:
    """Pids of live processes whose environment holds ``H3SPARK_LAUNCH_ID=launch_id`` (Linux)."""
    marker = f"H3SPARK_LAUNCH_ID={launch_id}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0") and not _is_zombie(entry):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def _is_zombie(pid: str) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
