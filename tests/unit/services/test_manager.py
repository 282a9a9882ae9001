from __future__ import annotations

import os
import socket

import pytest

from h3spark import services
from h3spark.cli._main import main
from h3spark.errors import ServiceError
from h3spark.services import Endpoint, ServicesConfig
from h3spark.services._paths import service_dir
from h3spark.services._process import PidRecord, is_running, launch, process_start_ticks


def _fake_running(name: str, endpoint: Endpoint, tmp_path) -> PidRecord:
    """Make ``name`` look started by us: an endpoint file and a pid file of a live sleeper."""
    state = service_dir(name)
    state.mkdir(parents=True)
    record = launch(name, ["sleep", "60"], dict(os.environ), tmp_path,
                    tmp_path / f"{name}.log")
    record.write(state / f"{name}.pid")
    endpoint.save(state / "endpoint.json")
    return record


def test_status_is_empty_without_state():
    assert services.status() == {}


def test_status_reads_running_services_and_down_stops_them(tmp_path):
    record = _fake_running("kafka", Endpoint("kafka", "127.0.0.1:19092"), tmp_path)
    assert services.status() == {"kafka": Endpoint("kafka", "127.0.0.1:19092")}

    assert services.down(["kafka"]) == ["kafka"]
    assert not is_running(record)
    assert services.status() == {}
    assert not (service_dir("kafka") / "kafka.pid").exists()


def test_status_ignores_a_pid_file_whose_process_is_gone(tmp_path):
    state = service_dir("spark")
    state.mkdir(parents=True)
    PidRecord("master", os.getpid(), process_start_ticks(os.getpid()) + 7, "").write(state / "master.pid")
    Endpoint("spark", "spark://127.0.0.1:7077").save(state / "endpoint.json")
    assert services.status() == {}


def test_up_when_already_up_is_a_no_op(tmp_path, monkeypatch):
    record = _fake_running("hdfs", Endpoint("hdfs", "hdfs://127.0.0.1:8020", "http://127.0.0.1:9870"), tmp_path)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))  # would fail if anything were started
    try:
        endpoints = services.up(["hdfs"])
        assert endpoints["hdfs"].webhdfs_url == "http://127.0.0.1:9870"
        assert is_running(record)
    finally:
        services.down(["hdfs"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_up_refuses_a_taken_port_before_starting_anything():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        config = ServicesConfig(kafka_port=port, kafka_controller_port=_free_port())
        with pytest.raises(ServiceError, match=f"cannot start kafka: port {port} \\(kafka broker\\) is already in use"):
            services.up(["kafka"], config)
    assert services.status() == {}


def test_unknown_service_name_is_refused():
    with pytest.raises(ServiceError, match="unknown service 'zookeeper'; choose from kafka, hdfs, spark, postgres, connect"):
        services.resolve_names(["kafka", "zookeeper"])


def test_cli_status_prints_the_endpoint_lines(tmp_path, capsys):
    _fake_running("hdfs", Endpoint("hdfs", "hdfs://127.0.0.1:8020", "http://127.0.0.1:9870"), tmp_path)
    try:
        assert main(["services", "status"]) == 0
    finally:
        services.down()
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["hdfs hdfs://127.0.0.1:8020 (webhdfs http://127.0.0.1:9870)"]
    assert captured.err.strip() == ("not running: kafka, spark, postgres, connect "
                                    "(start with: h3spark services up kafka spark postgres connect)")


def test_cli_up_when_already_up_prints_the_status(tmp_path, capsys):
    _fake_running("kafka", Endpoint("kafka", "127.0.0.1:9092"), tmp_path)
    try:
        assert main(["services", "up", "kafka"]) == 0
    finally:
        services.down()
    assert capsys.readouterr().out.splitlines() == ["kafka 127.0.0.1:9092", "already running: kafka"]


def test_cli_errors_exit_2_without_traceback(capsys):
    assert main(["services", "up", "zookeeper"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("h3spark: unknown service 'zookeeper'") and "Traceback" not in err


def test_cli_down_with_nothing_running(capsys):
    assert main(["services", "down"]) == 0
    assert capsys.readouterr().out.strip() == "nothing was running"
