"""Daemon processes: launching, pid files, liveness, stopping, ports and logs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from h3spark.errors import ServiceError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: the pid and the process start time, so a reused pid is not ours."""

    role: str
    pid: int
    start_ticks: int | None
    log: str

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        """The record in ``path``, or None when the file is missing or unreadable."""
        try:
            data = json.loads(path.read_text())
            return cls(role=str(data["role"]), pid=int(data["pid"]), start_ticks=data.get("start_ticks"),
                       log=str(data.get("log", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] in ("Z", "X")


def _reap(pid: int) -> None:
    """Collect our own exited child, if it is one, so it stops being a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_running(record: PidRecord) -> bool:
    """True when the process of ``record`` is alive and is the one we started (same start time)."""
    _reap(record.pid)
    ticks = process_start_ticks(record.pid)
    if ticks is None or _is_zombie(record.pid):
        return False
    return record.start_ticks is None or ticks == record.start_ticks


def launch(role: str, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> PidRecord:
    """Start ``cmd`` in the background in its own session, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger.debug("launching role=%s cmd=%s", role, " ".join(cmd))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return PidRecord(role=role, pid=proc.pid, start_ticks=process_start_ticks(proc.pid), log=str(log_path))


def stop(record: PidRecord, timeout_s: float = 30.0) -> None:
    """SIGTERM the process (and its process group, which it leads), then SIGKILL after ``timeout_s``."""
    if not is_running(record):
        return
    _signal(record, signal.SIGTERM)
    if not _wait_gone(record, timeout_s):
        logger.warning("process did not exit after SIGTERM, killing role=%s pid=%d", record.role, record.pid)
        _signal(record, signal.SIGKILL)
        _wait_gone(record, 10.0)
    _kill_group_leftovers(record)


def _kill_group_leftovers(record: PidRecord) -> None:
    """Children left in the group our daemon led (e.g. a Spark executor) go with it."""
    _reap(record.pid)
    if not live_group_members(record.pid):
        return
    time.sleep(0.2)
    try:
        os.killpg(record.pid, signal.SIGKILL)
        logger.warning("killed processes left in the group of role=%s pid=%d", record.role, record.pid)
    except ProcessLookupError:
        pass


def live_group_members(pgid: int) -> list[int]:
    """Pids of the processes (zombies excluded) in process group ``pgid``."""
    members = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_path.read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat_path.parent.name))
    return members


def _signal(record: PidRecord, sig: int) -> None:
    try:
        if os.getpgid(record.pid) == record.pid:
            os.killpg(record.pid, sig)
        else:
            os.kill(record.pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(record: PidRecord, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_running(record):
            return True
        time.sleep(0.1)
    return not is_running(record)


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something already listens on (or holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def accepts_connections(port: int, host: str = HOST, timeout_s: float = 1.0) -> bool:
    """True when a TCP connection to ``host:port`` succeeds (a cheap first readiness check)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def quiet_logger(name: str):
    """Silence a client library's logger while it probes a daemon that is still starting."""
    target = logging.getLogger(name)
    previous = target.level
    target.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        target.setLevel(previous)


def check_ports_free(service: str, ports: dict[str, int], env_hint: str) -> None:
    """Raise ServiceError naming every port of ``service`` that is already taken."""
    taken = [f"{port} ({label})" for label, port in ports.items() if port_in_use(port)]
    if taken:
        noun = "port" if len(taken) == 1 else "ports"
        verb = "is" if len(taken) == 1 else "are"
        raise ServiceError(f"cannot start {service}: {noun} {', '.join(taken)} {verb} already in use on {HOST}. "
                           f"Stop what listens there (see: ss -ltnp) or choose other ports ({env_hint}).")


def log_tail(path: str | Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file, indented, or a note that it is empty."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "    (no log)"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) if tail else "    (log is empty)"


def run_logged(what: str, cmd: list[str], log: Path, env: dict[str, str] | None = None,
               timeout_s: float = 300) -> None:
    """Run a one-off tool (a format, initdb, apt-get) with its output appended to ``log``; raise
    ServiceError ``WHAT failed (exit N)`` with the log's tail when it fails or outlives ``timeout_s``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        try:
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            code = f"none after {timeout_s:.0f} s"
    if code != 0:
        raise ServiceError(f"{what} failed (exit {code}). Last lines of {log}:\n{log_tail(log)}")


def wait_ready(service: str, records: list[PidRecord], probe: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``probe`` until it returns True; raise with the log tail if a daemon dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for record in records:
            if not is_running(record):
                raise ServiceError(f"{service}: the {record.role} process (pid {record.pid}) died while starting. "
                                   f"Last lines of {record.log}:\n{log_tail(record.log)}")
        try:
            if probe():
                return
        except Exception as error:  # noqa: BLE001 - any failure of a probe means "not ready yet"
            last_error = error
        time.sleep(0.5)
    logs = "\n".join(f"  {r.log}:\n{log_tail(r.log, 10)}" for r in records)
    raise ServiceError(f"{service} was not ready after {timeout_s:.0f} s (last probe error: {last_error}). "
                       f"Raise the limit with --timeout, or read the logs:\n{logs}")
