"""The driver JVM's class-data archive: where it lives, when sessions use it, and building it
(no JVM here: tests/integration/spark/test_jvm_archive.py starts one on the real archive)."""

from __future__ import annotations

import subprocess

import pytest

from h3spark.config import SparkConfig
from h3spark.errors import DependencyError
from h3spark.spark import _jvm_archive, build_jvm_archive, jvm_archive_options
from h3spark.spark._jvm_archive import archive_path
from h3spark.spark._session import LAUNCH_JAVA_OPTIONS, _conf_for

KEY = "spark.driver.extraJavaOptions"


def fake_java(root, name):
    java = root / name / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    return root / name


@pytest.fixture
def archives(monkeypatch, tmp_path):
    monkeypatch.setenv("H3SPARK_JVM_ARCHIVE_DIR", str(tmp_path / "archives"))
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path, "jdk-a")))
    return tmp_path


def _no_submitted_conf():
    from pyspark import SparkConf

    return SparkConf(loadDefaults=False)


def test_the_archive_is_named_for_the_spark_version_and_the_java_that_will_use_it(archives, monkeypatch):
    import pyspark

    first = archive_path()
    assert first.parent == archives / "archives"
    assert first.name.startswith(f"spark-driver-{pyspark.__version__}-") and first.suffix == ".jsa"
    monkeypatch.setenv("JAVA_HOME", str(fake_java(archives, "jdk-b")))
    assert archive_path() != first  # another Java cannot use the first one's archive


def test_without_java_there_is_no_archive_and_building_one_says_how_to_get_java(archives, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(archives / "no-such-jdk"))
    assert archive_path() is None
    assert jvm_archive_options() == []
    with pytest.raises(DependencyError, match="no java found.*openjdk-17"):
        build_jvm_archive()


def test_sessions_use_the_archive_once_it_exists_beside_the_launch_options_and_a_config_replaces_both(archives):
    assert jvm_archive_options() == []
    assert KEY not in _conf_for("local[2]", SparkConfig(), _no_submitted_conf())
    path = archive_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    options = jvm_archive_options()
    assert options[0] == f"-XX:SharedArchiveFile={path}"
    assert _conf_for("local[2]", SparkConfig(), _no_submitted_conf())[KEY] == " ".join(options)
    assert _conf_for("local[2]", SparkConfig(), _no_submitted_conf(), launch_only=True)[KEY] == " ".join([LAUNCH_JAVA_OPTIONS, *options])
    assert _conf_for("local[2]", SparkConfig(conf={KEY: "-Xss4m"}), _no_submitted_conf())[KEY] == "-Xss4m"


def test_an_existing_archive_is_not_built_again_unless_forced(archives, monkeypatch):
    path = archive_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")

    def no_jvm(*args, **kwargs):
        raise AssertionError("nothing should run")

    monkeypatch.setattr(subprocess, "run", no_jvm)
    assert build_jvm_archive() == path


def test_a_failed_recording_publishes_nothing_and_says_sessions_still_start(archives, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, 1, "", "java.lang.OutOfMemoryError"))
    with pytest.raises(DependencyError, match=r"(?s)failed \(exit 1\).*still start.*OutOfMemoryError"):
        build_jvm_archive()
    assert not archive_path().exists()
    assert [p.name for p in archive_path().parent.iterdir()] == []  # no half-written archive left behind


def test_a_recording_is_published_under_the_final_name_only_when_complete(archives, monkeypatch):
    def record(command, **kwargs):
        partial = command[-1].split("_record(")[1].rstrip(")").strip("'")
        with open(partial, "wb") as handle:
            handle.write(b"classes")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", record)
    path = build_jvm_archive()
    assert path == archive_path() and path.read_bytes() == b"classes"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert _jvm_archive.jvm_archive_options()[0].endswith(path.name)
