"""Shared fixtures: one local SparkSession per test session, markers by folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INTEGRATION_MARKERS = ("spark", "hdfs", "kafka", "cluster", "gpu", "torch", "postgres", "web")
UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    """Mark tests/integration/<area>/... with the marker <area>."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            area = parts[parts.index("integration") + 1] if parts.index("integration") + 1 < len(parts) else ""
            if area in INTEGRATION_MARKERS:
                item.add_marker(getattr(pytest.mark, area))


def require(condition: bool, reason: str) -> None:
    """Skip outside CI, fail under CI (CI=true), when an integration prerequisite is missing."""
    if condition:
        return
    if UNDER_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


_SPARK_CONF = {
    "spark.ui.enabled": False,
    "spark.sql.shuffle.partitions": 4,
    "spark.default.parallelism": 2,
}


@pytest.fixture
def spark(_spark_session_owner):
    """A local[2] SparkSession shared by the integration tests. A test that stops the
    active session (or replaces it with its own) does not break the ones after it."""
    from h3spark.config import SparkConfig
    from h3spark.spark import get_spark

    return get_spark(SparkConfig(master="local[2]", app_name="h3spark-tests", conf=_SPARK_CONF))


@pytest.fixture(scope="session")
def _spark_session_owner():
    require(shutil.which("java") is not None, "Java 17 is needed for Spark; install a JDK (apt-get install openjdk-17-jdk-headless)")
    yield
    from h3spark.spark import stop_spark

    stop_spark()


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A fresh h3spark workdir for one test."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def spark_submit():
    """Run ``spark-submit --master MASTER ARGS...`` from the repository root."""
    root = Path(__file__).resolve().parents[1]
    binary = str(Path(sys.executable).parent / "spark-submit")

    import pyspark

    env = {**os.environ, "SPARK_HOME": os.path.dirname(pyspark.__file__), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}

    def submit(master: str, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
        command = [binary, "--master", master, "--conf", "spark.ui.enabled=false", *args]
        return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)

    return submit


@pytest.fixture
def run_after_each_change():
    """``run_after_each_change(fs, after_each)`` makes a storage FileSystem call ``after_each``
    after every call that changes storage, so that a reader runs between the steps of a publish
    in a fixed order (no timing); it returns the list of the calls made, in order."""

    def wrap(fs, after_each) -> list[str]:
        steps = []
        for name in ("makedirs", "write_bytes", "rename", "delete"):
            def changed(*args, _call=getattr(fs, name), _name=name):
                _call(*args)
                steps.append(_name)
                after_each()
            setattr(fs, name, changed)
        return steps

    return wrap


@pytest.fixture
def run_before_first_rename():
    """``run_before_first_rename(fs, action)`` makes a storage FileSystem run ``action`` once,
    just before its first rename: another writer's publish lands between a publish's last
    check and its rename, in a fixed order (no timing). Returns ``fs``."""

    def wrap(fs, action):
        real = fs.rename

        def rename(source, target):
            fs.rename = real
            action()
            real(source, target)

        fs.rename = rename
        return fs

    return wrap
