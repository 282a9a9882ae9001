"""``h3spark services up|status|down postgres`` against the machine's PostgreSQL packages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import require
from tests.integration.postgres.pg import Postgres

H3SPARK = str(Path(sys.executable).with_name("h3spark"))


def test_the_running_server_takes_its_password_and_refuses_another(postgres):
    assert postgres.query("SELECT 1") == ["1"]
    assert postgres.query("SHOW listen_addresses") == ["127.0.0.1"]
    assert postgres.query("SHOW unix_socket_directories") == [""]
    refused = postgres.psql("SELECT 1", password="not-the-password")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(state: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "H3SPARK_STATE_DIR": str(state)}
    return subprocess.run([H3SPARK, "services", *args], env=env, capture_output=True, text=True, timeout=600)


def test_up_status_down_and_up_again_keeps_the_data(tmp_path):
    from h3spark.services._postgres import find_server_bin

    require(find_server_bin() is not None or os.geteuid() == 0,
            "PostgreSQL's server is not installed: apt-get install postgresql (or run as root, which installs it)")
    state, port = tmp_path / "state", _free_port()
    second = Postgres(url=f"jdbc:postgresql://127.0.0.1:{port}/postgres", port=port,
                      password_file=state / "postgres" / "password")
    try:
        started = _cli(state, "up", "postgres", "--postgres-port", str(port))
        assert started.returncode == 0, started.stderr
        assert started.stdout.splitlines()[0] == (f"postgres {second.url} (user h3spark, password_file "
                                                  f"{second.password_file})")
        assert _cli(state, "status", "postgres").stdout.splitlines() == started.stdout.splitlines()[:1]
        assert (second.password_file.stat().st_mode & 0o777) == 0o600
        second.query("CREATE TABLE kept (id int); INSERT INTO kept VALUES (42)")

        stopped = _cli(state, "down", "postgres")
        assert stopped.stdout.strip() == "stopped postgres"
        status = _cli(state, "status", "postgres")
        assert status.stdout == "" and "not running: postgres" in status.stderr
        assert second.psql("SELECT 1").returncode != 0
        assert "received fast shutdown request" in (state / "postgres" / "logs" / "postgres.log").read_text()

        assert _cli(state, "up", "postgres", "--postgres-port", str(port)).returncode == 0
        assert second.query("SELECT id FROM kept") == ["42"]
    finally:
        _cli(state, "down", "postgres")
