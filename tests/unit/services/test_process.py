from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from h3spark.errors import ServiceError
from h3spark.services._process import (
    PidRecord, check_ports_free, is_running, launch, log_tail, port_in_use, process_start_ticks, stop, wait_ready)


@pytest.fixture
def listening_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_port_in_use_detects_a_listener(listening_port):
    assert port_in_use(listening_port)


def test_port_in_use_is_false_for_a_free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not port_in_use(port)


def test_taken_port_error_names_port_service_and_fix(listening_port):
    with pytest.raises(ServiceError) as error:
        check_ports_free("kafka", {"kafka broker": listening_port}, "--kafka-port or H3SPARK_KAFKA_PORT")
    message = str(error.value)
    assert f"port {listening_port} (kafka broker) is already in use" in message
    assert "cannot start kafka" in message and "--kafka-port" in message


def test_pid_record_round_trips_and_tolerates_garbage(tmp_path):
    record = PidRecord(role="namenode", pid=os.getpid(), start_ticks=process_start_ticks(os.getpid()), log="x.log")
    record.write(tmp_path / "namenode.pid")
    assert PidRecord.read(tmp_path / "namenode.pid") == record
    (tmp_path / "bad.pid").write_text("not json")
    assert PidRecord.read(tmp_path / "bad.pid") is None
    assert PidRecord.read(tmp_path / "missing.pid") is None


def test_is_running_rejects_a_reused_pid():
    ticks = process_start_ticks(os.getpid())
    assert is_running(PidRecord("me", os.getpid(), ticks, ""))
    assert not is_running(PidRecord("me", os.getpid(), ticks + 1, ""))


def test_launch_and_stop_a_background_process(tmp_path):
    record = launch("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ),
                    tmp_path, tmp_path / "logs" / "sleeper.log")
    assert is_running(record)
    stop(record, timeout_s=5)
    assert not is_running(record)


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    record = launch("stubborn", [sys.executable, "-c", code], dict(os.environ), tmp_path, tmp_path / "s.log")
    deadline = time.monotonic() + 5
    while "up" not in (tmp_path / "s.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop(record, timeout_s=0.3)
    assert not is_running(record)


def test_stop_leaves_a_process_that_is_not_ours_alone():
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stop(PidRecord("other", other.pid, process_start_ticks(other.pid) + 1, ""), timeout_s=0.2)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_daemon_dying_while_starting_shows_its_log_tail(tmp_path):
    code = "print('java.net.BindException: Address already in use'); raise SystemExit(1)"
    record = launch("kafka", [sys.executable, "-c", code], dict(os.environ), tmp_path, tmp_path / "kafka.log")
    with pytest.raises(ServiceError) as error:
        wait_ready("kafka", [record], lambda: False, timeout_s=10)
    message = str(error.value)
    assert "kafka: the kafka process" in message and "died while starting" in message
    assert "Address already in use" in message and str(tmp_path / "kafka.log") in message


def test_wait_ready_times_out_with_the_probe_error(tmp_path):
    record = PidRecord("me", os.getpid(), process_start_ticks(os.getpid()), str(tmp_path / "none.log"))

    def probe():
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(ServiceError, match="hdfs was not ready after 0 s .*nobody home.*--timeout"):
        wait_ready("hdfs", [record], probe, timeout_s=0.2)


def test_log_tail_keeps_the_last_lines(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    tail = log_tail(log, lines=3)
    assert tail.splitlines() == ["    line 97", "    line 98", "    line 99"]
    assert "no log" in log_tail(tmp_path / "missing.log")


def test_stop_also_ends_children_left_in_the_daemons_group(tmp_path):
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    script = f"{sys.executable} -c \"{stubborn}\" & echo $!; wait"
    record = launch("parent", ["sh", "-c", script], dict(os.environ), tmp_path, tmp_path / "p.log")
    deadline = time.monotonic() + 5
    while "up" not in (tmp_path / "p.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    child_pid = int((tmp_path / "p.log").read_text().split()[0])
    stop(record, timeout_s=5)
    deadline = time.monotonic() + 3
    while not _dead(child_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _dead(child_pid)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for init (which reaps orphans only now and then here)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"
