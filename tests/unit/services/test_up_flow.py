"""The whole up/down flow with stand-in services whose daemons are small Python processes (no JVM)."""

from __future__ import annotations

import os

import pytest

from h3spark import services
from h3spark.errors import ServiceError
from h3spark.services import Endpoint, ServicesConfig
from h3spark.services import _manager
from h3spark.services._base import Daemon, Service

SLEEP = "echo daemon up; exec sleep 60"


class StandIn(Service):
    """A service whose one daemon runs ``code``; ready once the daemon has printed 'daemon up'."""

    def __init__(self, name: str, code: str = SLEEP, prepare_error: str | None = None):
        self.name, self.code, self.prepare_error = name, code, prepare_error
        self.port_flags = f"--{name}-port"

    def ports(self, config):
        return {}

    def endpoint(self, config):
        return Endpoint(self.name, f"127.0.0.1:1{len(self.name)}")

    def prepare(self, config, java, state):
        if self.prepare_error:
            raise ServiceError(self.prepare_error)
        self.state = state

    def daemons(self, config, java, state):
        return [Daemon(role=self.name, cmd=["sh", "-c", self.code], env=dict(os.environ))]

    def is_ready(self, endpoint):
        return "daemon up" in (self.state / "logs" / f"{self.name}.log").read_text()


@pytest.fixture
def stand_ins(monkeypatch):
    table = {}
    monkeypatch.setattr(_manager, "_services", lambda: table)
    monkeypatch.setattr(_manager, "check_java", lambda: "java")
    yield table
    services.down()


def test_up_waits_until_ready_and_down_stops(stand_ins):
    stand_ins.update(kafka=StandIn("kafka"), hdfs=StandIn("hdfs"))
    endpoints = services.up(["kafka", "hdfs"], ServicesConfig(timeout_s=10))
    assert set(endpoints) == {"kafka", "hdfs"} and set(services.status()) == {"kafka", "hdfs"}
    assert services.down() == ["kafka", "hdfs"]
    assert services.status() == {}


def test_a_daemon_that_dies_is_reported_and_the_others_stay_up(stand_ins):
    crash = "echo 'Exception in thread main: java.io.IOException: NameNode is not formatted.'; exit 1"
    stand_ins.update(kafka=StandIn("kafka"), hdfs=StandIn("hdfs", code=crash))
    with pytest.raises(ServiceError) as error:
        services.up(["kafka", "hdfs"], ServicesConfig(timeout_s=10))
    assert "hdfs: the hdfs process" in str(error.value) and "NameNode is not formatted" in str(error.value)
    assert set(services.status()) == {"kafka"}


def test_a_failing_prepare_undoes_the_services_this_call_launched(stand_ins):
    stand_ins.update(kafka=StandIn("kafka"), hdfs=StandIn("hdfs", prepare_error="could not download the hdfs jars"))
    with pytest.raises(ServiceError, match="could not download the hdfs jars"):
        services.up(["kafka", "hdfs"], ServicesConfig(timeout_s=10))
    assert services.status() == {}
