"""Formatting Kafka's storage: the cluster id never reads as an option, whatever is drawn."""

from __future__ import annotations

import base64
import re
import stat
import sys
from pathlib import Path

import pytest

from h3spark.errors import ServiceError
from h3spark.services import ServicesConfig
from h3spark.services import _kafka
from h3spark.services._kafka import KafkaService, new_cluster_id

CLUSTER_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}")

# A stand-in for `java ... kafka.tools.StorageTool format ...`: it parses its arguments with
# Python's argparse, which (like Kafka's argparse4j) reads '-t -abc' as a missing argument.
FAKE_STORAGE_TOOL = """\
import argparse, pathlib, sys
args = sys.argv[sys.argv.index("kafka.tools.StorageTool") + 1:]
parser = argparse.ArgumentParser(prog="kafka-storage")
sub = parser.add_subparsers(dest="command")
fmt = sub.add_parser("format")
fmt.add_argument("-t", "--cluster-id", required=True)
fmt.add_argument("-c", "--config", required=True)
fmt.add_argument("--ignore-formatted", action="store_true")
ns = parser.parse_args(args)
props = dict(line.split("=", 1) for line in pathlib.Path(ns.config).read_text().splitlines() if "=" in line)
data = pathlib.Path(props["log.dirs"])
data.mkdir(parents=True, exist_ok=True)
(data / "meta.properties").write_text(f"cluster.id={ns.cluster_id}\\n")
"""


@pytest.fixture
def fake_java(tmp_path, monkeypatch) -> str:
    path = tmp_path / "java"
    path.write_text(f"#!{sys.executable}\n{FAKE_STORAGE_TOOL}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    jars = tmp_path / "jars" / "kafka"
    jars.mkdir(parents=True)
    (jars / "kafka.jar").write_bytes(b"x")
    monkeypatch.setenv("H3SPARK_JARS_DIR", str(tmp_path / "jars"))  # no Maven in a unit test
    return str(path)


def _formatted_id(state: Path) -> str:
    return (state / "data" / "meta.properties").read_text().strip().removeprefix("cluster.id=")


def test_ten_thousand_draws_never_start_with_a_dash():
    ids = [new_cluster_id() for _ in range(20_000)]
    assert all(CLUSTER_ID.fullmatch(cluster_id) for cluster_id in ids)
    assert len(set(ids)) == len(ids)


def test_a_draw_that_starts_with_a_dash_is_drawn_again():
    dash_first = b"\xf8" + bytes(15)  # 0b111110.. is '-' in URL-safe base64
    assert base64.urlsafe_b64encode(dash_first).decode().startswith("-")
    draws = iter([dash_first, bytes(16), b"\x00" * 15 + b"\x01", b"\x04" + bytes(15)])
    # the zero id and Kafka's metadata topic id are reserved too, as in Kafka's Uuid.randomUuid()
    assert new_cluster_id(lambda: next(draws)) == "BAAAAAAAAAAAAAAAAAAAAA"


def test_services_up_formats_a_fresh_state_dir(fake_java, tmp_path):
    state = tmp_path / "state"
    KafkaService().prepare(ServicesConfig(), fake_java, state)
    assert CLUSTER_ID.fullmatch(_formatted_id(state))


def test_an_id_with_a_leading_dash_still_reaches_the_tool_as_one_argument(fake_java, tmp_path, monkeypatch):
    monkeypatch.setattr(_kafka, "new_cluster_id", lambda: "-AbCdEfGhIjKlMnOpQrStU")
    state = tmp_path / "state"
    KafkaService().prepare(ServicesConfig(), fake_java, state)
    assert _formatted_id(state) == "-AbCdEfGhIjKlMnOpQrStU"


def test_a_failing_format_names_its_log(tmp_path, monkeypatch):
    jars = tmp_path / "jars" / "kafka"
    jars.mkdir(parents=True)
    (jars / "kafka.jar").write_bytes(b"x")
    monkeypatch.setenv("H3SPARK_JARS_DIR", str(tmp_path / "jars"))
    failing = tmp_path / "java"
    failing.write_text("#!/bin/sh\necho 'kafka-storage: error: broken' >&2\nexit 1\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(ServiceError, match=r"kafka: formatting the storage .* failed \(exit 1\).*format.log"):
        KafkaService().prepare(ServicesConfig(), str(failing), tmp_path / "state")
