"""A session started in the background, and the JVM options of a session that only runs launches (no JVM here)."""

from __future__ import annotations

import pytest

from h3spark.config import SparkConfig
from h3spark.errors import UsageError
from h3spark.spark import _session, start_spark
from h3spark.spark._session import LAUNCH_JAVA_OPTIONS, _conf_for


def _no_submitted_conf():
    from pyspark import SparkConf

    return SparkConf(loadDefaults=False)


def test_a_launch_only_session_gets_the_light_jvm_unless_the_config_or_spark_submit_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.setenv("H3SPARK_JVM_ARCHIVE_DIR", str(tmp_path))  # no class-data archive there
    key = "spark.driver.extraJavaOptions"
    assert key not in _conf_for("local[2]", SparkConfig(), _no_submitted_conf())
    assert _conf_for("local[2]", SparkConfig(), _no_submitted_conf(), launch_only=True)[key] == LAUNCH_JAVA_OPTIONS
    own = SparkConfig(conf={key: "-Xss4m"})
    assert _conf_for("local[2]", own, _no_submitted_conf(), launch_only=True)[key] == "-Xss4m"
    submitted = _no_submitted_conf().set(key, "-Xss8m")
    assert key not in _conf_for("local[2]", SparkConfig(), submitted, launch_only=True)  # spark-submit's JVM runs already


def test_start_spark_hands_over_the_session_or_raises_its_error_in_the_callers_thread(monkeypatch):
    calls = []
    monkeypatch.setattr(_session, "get_spark", lambda config, launch_only: calls.append((config, launch_only)) or "session")
    config = SparkConfig(master="local[1]")
    assert start_spark(config, launch_only=True).result() == "session"
    assert calls == [(config, True)]

    def refuse(config, launch_only):
        raise UsageError("no Java here")

    monkeypatch.setattr(_session, "get_spark", refuse)
    starting = start_spark(config)
    with pytest.raises(UsageError, match="no Java here"):
        starting.result()
