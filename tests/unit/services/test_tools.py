from __future__ import annotations

import stat

import pytest

from h3spark.errors import ServiceError
from h3spark.services import cache_dir, state_dir
from h3spark.services._java import check_java, find_java, parse_java_major, require_java_major
from h3spark.services._maven import (
    ensure_jars, find_maven, is_complete, is_not_found, maven_error, spark_kafka_versions, write_manifest)


@pytest.mark.parametrize("output, major", [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('java version "1.8.0_292"', 8),
    ('openjdk version "21" 2023-09-19', 21),
    ('openjdk version "11.0.2-ea"', 11),
    ("something else", None),
])
def test_parse_java_major(output, major):
    assert parse_java_major(output) == major


def test_old_java_is_refused_with_how_to_fix():
    with pytest.raises(ServiceError, match=r"need Java 17 or newer; /opt/j/bin/java is Java 11.*JAVA_HOME"):
        require_java_major("/opt/j/bin/java", 11)


def test_java_home_without_java_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ServiceError, match=f"JAVA_HOME={tmp_path} has no bin/java"):
        find_java()


def test_missing_java_on_path_is_reported(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match="no 'java' is on PATH.*openjdk-17"):
        find_java()


def test_check_java_reads_the_version_of_a_fake_old_java(tmp_path):
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(ServiceError, match="is Java 11"):
        check_java(str(fake))


def test_missing_maven_says_what_is_needed(monkeypatch, tmp_path):
    monkeypatch.delenv("H3SPARK_MVN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match="no 'mvn' is on PATH.*apt-get install maven.*H3SPARK_JARS_DIR"):
        find_maven()


def test_unreachable_maven_central_is_named():
    output = "[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13:pom:4.1.1: UnknownHostException"
    message = str(maven_error("the kafka jars", output, 1))
    assert "could not download the kafka jars: Maven Central could not be reached" in message
    assert "H3SPARK_JARS_DIR" in message and "UnknownHostException" in message


def test_not_found_is_told_apart_from_network_errors():
    assert is_not_found("Could not find artifact org.apache.spark:spark-sql-kafka-0-10_2.13:jar:4.3.0 in central")
    assert is_not_found("spark-sql-kafka-0-10_2.13:jar:4.3.0 was not found in https://x during a previous attempt")
    assert not is_not_found("Could not transfer artifact x: Connection refused")


def test_spark_kafka_versions_fall_back_to_earlier_patches_then_the_previous_minor():
    assert spark_kafka_versions("4.3.0") == ["4.3.0", "4.2.0"]
    assert spark_kafka_versions("4.3.2") == ["4.3.2", "4.3.1", "4.3.0", "4.2.0"]
    assert spark_kafka_versions("5.0.1") == ["5.0.1", "5.0.0"]
    assert spark_kafka_versions("4.1.0.dev0") == ["4.1.0", "4.0.0"]
    with pytest.raises(ServiceError, match="'nightly' is not MAJOR.MINOR.PATCH"):
        spark_kafka_versions("nightly")


def test_manifest_completeness(tmp_path):
    (tmp_path / "a.jar").write_bytes(b"x")
    (tmp_path / "b.jar").write_bytes(b"y")
    assert not is_complete(tmp_path)
    write_manifest(tmp_path)
    assert is_complete(tmp_path)
    (tmp_path / "b.jar").unlink()
    assert not is_complete(tmp_path)


def test_cached_jars_are_used_without_maven(monkeypatch, tmp_path):
    from h3spark.services._maven import jars_dir_for

    target = jars_dir_for("kafka")
    target.mkdir(parents=True)
    (target / "kafka.jar").write_bytes(b"x")
    write_manifest(target)
    monkeypatch.setenv("H3SPARK_MVN", "/nonexistent/mvn")
    assert ensure_jars("kafka") == target


def test_jars_dir_override_is_used_and_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("H3SPARK_JARS_DIR", str(tmp_path / "jars"))
    (tmp_path / "jars" / "hdfs").mkdir(parents=True)
    with pytest.raises(ServiceError, match=r"holds no jars for the hdfs service.*poms/hdfs.xml"):
        ensure_jars("hdfs")
    (tmp_path / "jars" / "hdfs" / "hadoop-hdfs.jar").write_bytes(b"x")
    assert ensure_jars("hdfs") == tmp_path / "jars" / "hdfs"


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("H3SPARK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "h3spark"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "h3spark"
    monkeypatch.setenv("H3SPARK_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.delenv("H3SPARK_STATE_DIR")
    assert state_dir() == tmp_path / "c" / "services"


def test_an_empty_repository_without_network_counts_as_unreachable():
    output = ("\x1b[0m\x1b[0m[ERROR] No plugin found for prefix 'dependency' in the current project and in the "
              "plugin groups [org.apache.maven.plugins] available from the repositories [local, central] -> [Help 1]\n"
              "[ERROR] \n")
    message = str(maven_error("the hdfs jars", output, 1))
    assert "Maven Central could not be reached" in message
    assert "\x1b" not in message and "No plugin found" in message
