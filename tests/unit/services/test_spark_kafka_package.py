"""Which spark-sql-kafka release is used: one that exists, chosen in a fixed order, never a guess."""

from __future__ import annotations

import logging
import stat
import sys
from pathlib import Path

import pytest

from h3spark.errors import ServiceError
from h3spark.services import _maven
from h3spark.services._maven import SPARK_KAFKA_ARTIFACT, ensure_spark_kafka_package, spark_kafka_package

# A stand-in for `mvn dependency:copy-dependencies` on Maven Central, where 4.3.0 is missing.
FAKE_MVN = """\
import pathlib, re, sys
version = re.search(r"<artifactId>spark-sql-kafka-0-10_2.13</artifactId>\\s*<version>([^<]+)<",
                    pathlib.Path("pom.xml").read_text()).group(1)
if version == "4.3.0":
    print(f"[ERROR] Could not find artifact org.apache.spark:spark-sql-kafka-0-10_2.13:jar:{version} in central")
    sys.exit(1)
out = pathlib.Path(next(a for a in sys.argv if a.startswith("-DoutputDirectory=")).split("=", 1)[1])
out.mkdir(parents=True)
(out / f"spark-sql-kafka-0-10_2.13-{version}.jar").write_bytes(b"jar")
"""


@pytest.fixture
def pyspark_430(tmp_path, monkeypatch):
    monkeypatch.setattr(_maven, "pyspark_version", lambda: "4.3.0")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # an empty ~/.m2
    return tmp_path


def _in_m2(home: Path, version: str) -> None:
    folder = home / ".m2/repository/org/apache/spark" / SPARK_KAFKA_ARTIFACT / version
    folder.mkdir(parents=True)
    (folder / f"{SPARK_KAFKA_ARTIFACT}-{version}.jar").write_bytes(b"jar")


def test_nothing_resolved_is_an_error_not_a_guess(pyspark_430):
    with pytest.raises(ServiceError, match=r"for pyspark 4.3.0 has not been resolved: none of the versions "
                                           r"4.3.0, 4.2.0 is in .*h3spark services up kafka"):
        spark_kafka_package()


def test_a_release_in_the_local_maven_repository_is_used(pyspark_430):
    _in_m2(pyspark_430 / "home", "4.2.0")
    assert spark_kafka_package() == "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"


def test_resolution_skips_a_missing_release_says_so_and_records_the_one_used(pyspark_430, monkeypatch, caplog):
    mvn = pyspark_430 / "mvn"
    mvn.write_text(f"#!{sys.executable}\n{FAKE_MVN}")
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("H3SPARK_MVN", str(mvn))
    with caplog.at_level(logging.WARNING, logger="h3spark.services._maven"):
        assert ensure_spark_kafka_package() == "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"
    assert "using spark-sql-kafka-0-10_2.13 4.2.0 with pyspark 4.3.0: 4.3.0 is not on Maven Central" in caplog.text
    assert spark_kafka_package() == "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"


def test_no_release_on_maven_central_names_every_version_tried(pyspark_430, monkeypatch):
    mvn = pyspark_430 / "mvn"
    mvn.write_text("#!/bin/sh\necho '[ERROR] Could not find artifact x in central'\nexit 1\n")
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("H3SPARK_MVN", str(mvn))
    with pytest.raises(ServiceError, match=r"in none of the versions 4.3.0, 4.2.0 \(tried for pyspark 4.3.0\)"):
        ensure_spark_kafka_package()


def test_ingest_does_not_guess_a_release(pyspark_430):
    from h3spark.ingest._kafka import _package_hint

    hint = _package_hint()
    assert "spark-sql-kafka-0-10_2.13:VERSION" in hint and "spark_kafka_package()" in hint
    assert "4.3.0" not in hint
