"""A class-data archive (AppCDS, JDK 13+) for the Spark driver JVM: the classes a session start
loads are mapped from one file instead of being read, parsed and verified from Spark's jars
each time. On the idle 2-core machine a local session started in 8.1-9.2 s without it and in
3.9-4.9 s with it, and the first barrier job took 1.9-2.2 s instead of 2.6-3.2 s.

    >>> build_jvm_archive()      # once per environment: scripts/setup.sh does it (about 50 s here)
    >>> jvm_archive_options()    # ["-XX:SharedArchiveFile=..."] once it exists, else []

The archive belongs to one Java and one set of Spark jars, so its name carries both (a new
pyspark or another Java gets a new one, built again by setup). A JVM that cannot use an
archive (jars changed in place) starts as it would without one: it is an optimisation only.
It lives in ``H3SPARK_JVM_ARCHIVE_DIR``, else ``~/.cache/h3spark/jvm``, and is published
atomically: the JVM writes it under a temporary name when it exits, which is then renamed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from h3spark.errors import DependencyError

logger = logging.getLogger(__name__)

BUILD_TIMEOUT_S = 600.0


def archive_path() -> Path | None:
    """Where this environment's archive is (or would be); None when no ``java`` can be found."""
    java = _java()
    if java is None:
        return None
    import pyspark

    jars = Path(pyspark.__file__).resolve().parent / "jars"
    key = hashlib.sha256(f"{pyspark.__version__}\0{jars}\0{java}".encode()).hexdigest()[:16]
    root = os.environ.get("H3SPARK_JVM_ARCHIVE_DIR") or Path.home() / ".cache" / "h3spark" / "jvm"
    return Path(root) / f"spark-driver-{pyspark.__version__}-{key}.jsa"


def jvm_archive_options() -> list[str]:
    """The driver JVM's options that use the archive, when it has been built; [] otherwise."""
    path = archive_path()
    if path is None or not path.is_file():
        logger.debug("no class-data archive for the driver JVM (%s); build_jvm_archive() makes one", path)
        return []
    return [f"-XX:SharedArchiveFile={path}", "-Xlog:cds*=off"]  # a JVM that cannot use it says so on stdout: not useful


def build_jvm_archive(force: bool = False) -> Path:
    """Record the archive (a local session that starts, runs a barrier job and a DataFrame job
    with Arrow, and stops, in a child process whose JVM writes the archive as it exits); return
    its path. Does nothing when it exists, unless ``force``."""
    path = archive_path()
    if path is None:
        raise DependencyError("no java found (JAVA_HOME or PATH): Spark needs Java 17; install it, e.g. "
                              "apt-get install -y openjdk-17-jdk-headless")
    if path.is_file() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".building-", dir=path.parent) as tmp:
        partial = Path(tmp) / path.name
        done = subprocess.run([sys.executable, "-c", f"from h3spark.spark._jvm_archive import _record; _record({str(partial)!r})"],
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if done.returncode or not partial.is_file():
            raise DependencyError(f"recording the driver JVM's class-data archive failed (exit {done.returncode}); "
                                  f"Spark sessions still start, only slower. Its output:\n{(done.stdout + done.stderr)[-2000:]}")
        os.replace(partial, path)
    logger.info("class-data archive of the driver JVM: %s (%.0f MB) in %.1f s", path, path.stat().st_size / 2**20,
                time.monotonic() - started)
    return path


def _record(partial: str) -> None:
    """In the child process: start, use and stop a session whose JVM archives its classes at exit,
    then wait for that JVM to exit (so the archive is complete when this process ends)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("h3spark-jvm-archive")
             .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.driver.extraJavaOptions", f"-XX:ArchiveClassesAtExit={partial}").getOrCreate())
    spark.sparkContext.parallelize(range(2), 2).barrier().mapPartitions(lambda rows: [sum(rows)]).collect()
    spark.range(100).selectExpr("id", "id * 2 AS twice").toPandas()
    jvm = SparkContext._gateway.proc
    spark.stop()
    SparkContext._gateway.shutdown()
    jvm.stdin.close()  # the gateway JVM exits when its stdin closes, writing the archive
    jvm.wait(timeout=BUILD_TIMEOUT_S)


def _java() -> str | None:
    """The java pyspark will run (JAVA_HOME's, else the one on PATH), resolved through links."""
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return os.path.realpath(found) if found and os.path.exists(found) else None
