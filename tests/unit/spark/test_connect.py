"""Spark Connect sessions without a server: the shared session's id, URLs, the channel's host, refusals."""

from __future__ import annotations

import socket
import time
import uuid

import pyarrow as pa
import pytest
from pydantic import ValidationError

from h3spark.cli._main import main
from h3spark.config import SparkConfig
from h3spark.errors import UsageError
from h3spark.spark import channel_host, get_spark, is_connect, launch_session_id
from h3spark.spark._connect import with_session_id
from h3spark.train._spark_launch import _arrow_task

URL = "sc://127.0.0.1:15002"


def test_the_launch_session_id_is_one_per_user_and_server_and_a_version_4_uuid():
    first = launch_session_id(URL, "ada")
    assert first == launch_session_id(URL, "ada")  # every process of that user finds the same server session
    assert first != launch_session_id(URL, "grace") and first != launch_session_id("sc://10.0.0.5:15002", "ada")
    assert uuid.UUID(first).version == 4 and str(uuid.UUID(first)) == first  # what pyspark's client accepts


@pytest.mark.parametrize(("url", "expected"), [
    ("sc://h:1", "sc://h:1/;session_id=S"),
    ("sc://h:1/", "sc://h:1/;session_id=S"),
    ("sc://h:1/;token=t", "sc://h:1/;token=t;session_id=S"),
    ("sc://h:1/;session_id=mine", "sc://h:1/;session_id=mine"),  # the user's own choice stays
])
def test_the_session_id_joins_the_url_parameters(url, expected):
    assert with_session_id(url, "S") == expected


def test_a_url_that_is_not_spark_connect_is_refused_with_an_example():
    with pytest.raises(UsageError, match=r"starts with sc://, e.g. sc://127.0.0.1:15002. Got 'http://h:1' instead"):
        with_session_id("http://h:1", "S")
    with pytest.raises(ValidationError, match="must be a Spark Connect URL, sc://HOST:PORT"):
        SparkConfig(remote="grpc://127.0.0.1:15002")


def test_a_connect_config_is_refused_for_work_other_than_launches_before_any_connection():
    with pytest.raises(UsageError, match=r"spark.remote \(sc://127.0.0.1:1, Spark Connect\) runs launches only"):
        get_spark(SparkConfig(remote="sc://127.0.0.1:1"))


class _Conf:
    def __init__(self, values):
        self.values = values

    def get(self, key, default=None):
        return self.values.get(key, default)


class _Session:
    def __init__(self, values):
        self.conf = _Conf(values)


def test_tasks_reach_the_channel_on_loopback_when_the_server_drives_on_loopback():
    assert channel_host(_Session({"spark.driver.host": "127.0.0.1"})) == "127.0.0.1"
    assert channel_host(_Session({"spark.driver.host": "localhost"})) == "127.0.0.1"
    assert channel_host(_Session({})) == "127.0.0.1"


def test_a_remote_driver_gets_the_address_of_the_route_towards_it():
    host = channel_host(_Session({"spark.driver.host": "127.0.0.2"}))  # another address: routed, not named
    assert host.startswith("127.") and host != "0.0.0.0"


def test_only_pyspark_connect_sessions_count_as_connect():
    assert not is_connect(_Session({}))
    assert not is_connect(object())


def test_the_barrier_task_runs_over_arrow_batches_and_yields_one_outcome_per_text():
    seen = []

    def task_fn(rows):
        seen.extend(rows)
        yield '{"task": 0}'
        yield '{"task": 1}'

    batches = [pa.RecordBatch.from_pydict({"id": [3]}), pa.RecordBatch.from_pydict({"id": [4]})]
    out = list(_arrow_task(task_fn)(iter(batches)))
    assert seen == [3, 4]
    assert [batch.column("outcome").to_pylist() for batch in out] == [['{"task": 0}'], ['{"task": 1}']]


def test_a_launch_to_a_server_that_is_not_there_fails_at_once_with_exit_2(capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    assert main(["launch", "-n", "1", "--kind", "torch", "--remote", f"sc://127.0.0.1:{port}", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert f"no Spark Connect server answers at sc://127.0.0.1:{port} (127.0.0.1:{port}: Connection refused). " \
           "Start the local one with: h3spark services up connect" in err and "Traceback" not in err
    assert time.monotonic() - started < 30  # pyspark's client alone retries for minutes


@pytest.mark.parametrize(("argv", "message"), [
    (["launch", "-n", "2", "--master", "local[2]", "--remote", URL, "--", "true"],
     "--master and --remote each choose where the launch runs; give one of them."),
    (["launch", "-n", "2", "--local", "--remote", URL, "--", "true"],
     "--remote and --local each choose where the launch runs; give one of them."),
    (["launch", "-n", "2", "--remote", "http://127.0.0.1:15002", "--", "true"],
     "--remote 'http://127.0.0.1:15002' must be a Spark Connect URL, sc://HOST:PORT"),
    (["launch", "-n", "2", "--master", "bogus", "--", "true"], "--master 'bogus' must be local[N]"),
])
def test_launch_refuses_conflicting_or_bad_places_with_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
