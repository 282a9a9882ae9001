"""The PostgreSQL service's pieces that need no server: binaries, users, commands, settings, stop."""

from __future__ import annotations

import re
import stat
import sys
import time
from pathlib import Path

import pytest

from h3spark import services
from h3spark.errors import ServiceError
from h3spark.services import Endpoint, ServicesConfig
from h3spark.services._postgres import (find_server_bin, install_with_apt, server_command, server_settings,
                                        system_user)
from h3spark.services._process import is_running, launch, stop
from h3spark.storage import JDBC_DRIVERS

POMS = Path(services.__file__).parent / "poms"


def _fake_bin(directory: Path, tools=("postgres", "initdb", "pg_isready")) -> Path:
    directory.mkdir(parents=True)
    for tool in tools:
        path = directory / tool
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return directory


def test_the_newest_complete_debian_version_is_chosen(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    _fake_bin(tmp_path / "13" / "bin")
    _fake_bin(tmp_path / "15" / "bin")
    _fake_bin(tmp_path / "16" / "bin", tools=("postgres",))  # a client-only or broken install
    assert find_server_bin(tmp_path) == tmp_path / "15" / "bin"


def test_no_server_anywhere_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert find_server_bin(tmp_path / "missing") is None


def test_a_server_on_path_is_found_when_debian_has_none(tmp_path, monkeypatch):
    bin_dir = _fake_bin(tmp_path / "opt" / "bin")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_server_bin(tmp_path / "missing") == bin_dir


def test_without_root_apt_is_not_run_and_the_error_says_how_to_install(tmp_path):
    with pytest.raises(ServiceError, match=r"sudo apt-get install postgresql.*as root"):
        install_with_apt(tmp_path / "apt.log", is_root=False)
    assert not (tmp_path / "apt.log").exists()


def test_an_ordinary_user_runs_the_server_as_itself():
    assert system_user(is_root=False) is None


def test_as_root_the_server_runs_as_postgres_through_a_held_state_dir():
    cmd, data = server_command(Path("/root/.cache/state"), ["/usr/lib/postgresql/15/bin/postgres"], "postgres")
    assert data == "/proc/self/fd/9/data"
    assert cmd[:2] == ["sh", "-c"] and cmd[3:5] == ["sh", "/root/.cache/state"]
    assert cmd[5:] == ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
                       "/usr/lib/postgresql/15/bin/postgres"]


def test_as_an_ordinary_user_the_data_dir_is_named_plainly():
    cmd, data = server_command(Path("/home/u/state"), ["postgres"], None)
    assert data == "/home/u/state/data"
    assert cmd[3:] == ["sh", "", "postgres"] and "setpriv" not in cmd


def test_the_server_listens_on_loopback_tcp_only():
    settings = server_settings(ServicesConfig(postgres_port=15433))
    assert settings["listen_addresses"] == "127.0.0.1" and settings["port"] == "15433"
    assert settings["unix_socket_directories"] == ""


def test_the_port_comes_from_the_environment_and_is_checked():
    assert ServicesConfig().postgres_port == 5433
    assert ServicesConfig.from_env(environ={"H3SPARK_POSTGRES_PORT": "15433"}).postgres_port == 15433
    with pytest.raises(ServiceError, match="'postgres_port' setting must be a port"):
        ServicesConfig.from_env({"postgres_port": 70000}, environ={})


def test_postgres_is_one_of_the_services_started_by_default():
    assert services.resolve_names(None) == ["kafka", "hdfs", "spark", "postgres", "connect"]
    assert services.resolve_names(["postgres", "kafka"]) == ["kafka", "postgres"]


def test_the_status_line_names_the_url_user_and_password_file():
    line = Endpoint("postgres", "jdbc:postgresql://127.0.0.1:5433/postgres").line()
    assert line == (f"postgres jdbc:postgresql://127.0.0.1:5433/postgres (user h3spark, "
                    f"password_file {services.postgres_password_file()})")


def test_the_driver_pom_and_the_coordinate_spark_is_told_agree():
    pom = (POMS / "postgres-jdbc.xml").read_text()
    group, artifact, version = JDBC_DRIVERS["postgresql"].package.split(":")
    assert f"<groupId>{group}</groupId>" in pom and f"<artifactId>{artifact}</artifactId>" in pom
    assert re.search(rf"<version>{re.escape(version)}</version>", pom)


# A stand-in server: Python, because a shell cannot trap SIGINT, which a background job starts with ignored.
STAND_IN = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: print("smart-shutdown", flush=True))
signal.signal(signal.SIGINT, lambda *_: (print("fast-shutdown", flush=True), sys.exit(0)))
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def test_down_asks_for_a_fast_shutdown(tmp_path):
    """SIGTERM (what 'services down' sends) reaches the server as SIGINT, PostgreSQL's fast shutdown."""
    cmd, _ = server_command(tmp_path, [sys.executable, "-c", STAND_IN], None)
    log = tmp_path / "server.log"
    record = launch("postgres", cmd, {"PATH": "/usr/bin:/bin"}, tmp_path, log)
    while "ready" not in log.read_text():
        assert is_running(record), log.read_text()
        time.sleep(0.01)
    stop(record, timeout_s=10)
    assert not is_running(record)
    assert "fast-shutdown" in log.read_text()


def test_a_failing_one_off_tool_names_its_exit_and_the_tail_of_its_log(tmp_path):
    from h3spark.services._process import run_logged

    with pytest.raises(ServiceError, match=r"(?s)postgres: initdb in /x failed \(exit 3\)\. Last lines of .*initdb.log:.*"
                                           r"could not create directory"):
        run_logged("postgres: initdb in /x", ["sh", "-c", "echo 'could not create directory'; exit 3"],
                   tmp_path / "logs" / "initdb.log")
