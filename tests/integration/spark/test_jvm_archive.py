"""The driver JVM's class-data archive on a real JVM: the one scripts/setup.sh built (built here
when missing) maps into a session's JVM (``-Xshare:on`` refuses to start otherwise), and a
session whose classpath differs from the recorded one still starts, silently without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from h3spark.spark import build_jvm_archive, jvm_archive_options

SESSION = textwrap.dedent("""
    import sys
    from h3spark.config import SparkConfig
    from h3spark.spark import get_spark
    conf = {"spark.ui.enabled": False, "spark.driver.extraJavaOptions": sys.argv[1]}
    if len(sys.argv) > 2:
        conf["spark.driver.extraClassPath"] = sys.argv[2]
    spark = get_spark(SparkConfig(master="local[2]", app_name="archive-check", conf=conf))
    print("SUM", spark.sparkContext.parallelize(range(10), 2).sum())
    print("ROWS", spark.range(7).count())
    spark.stop()
""")


@pytest.mark.timeout(600)
def test_the_archive_maps_into_a_sessions_jvm_and_a_jvm_that_cannot_use_it_starts_without_it(tmp_path):
    build_jvm_archive()  # quick when scripts/setup.sh built it
    options = " ".join(jvm_archive_options())
    assert "-XX:SharedArchiveFile=" in options
    used = subprocess.run([sys.executable, "-c", SESSION, f"{options} -Xshare:on"], capture_output=True, text=True, timeout=300)
    assert used.returncode == 0, used.stderr[-3000:]
    assert "SUM 45" in used.stdout and "ROWS 7" in used.stdout

    other = subprocess.run([sys.executable, "-c", SESSION, options, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert other.returncode == 0, other.stderr[-3000:]
    assert "SUM 45" in other.stdout
    assert "shared archive" not in (other.stdout + other.stderr).lower()  # the JVM's own complaint is switched off
