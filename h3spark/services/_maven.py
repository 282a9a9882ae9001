"""Resolving the services' jars with Maven, once, into the h3spark cache.

Each service has a small pom in ``h3spark/services/poms``; ``mvn dependency:copy-dependencies``
copies its runtime jars into ``<cache>/jars/<service>-<pom hash>``. A directory with a complete
``.complete`` manifest is reused without running Maven, so a second start downloads nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from h3spark.errors import ServiceError
from h3spark.services._paths import cache_dir, jars_override_dir, maven_repo_dir

logger = logging.getLogger(__name__)

_MANIFEST = ".complete"
_MVN_TIMEOUT_S = 1200


def pom_text(name: str, spark_version: str | None = None) -> str:
    """The pom kept as package data for ``name`` (kafka, hdfs, spark-kafka, postgres-jdbc), placeholders filled."""
    text = resources.files("h3spark.services").joinpath("poms", f"{name}.xml").read_text()
    return text.replace("@SPARK_VERSION@", spark_version or pyspark_version())


def pyspark_version() -> str:
    import pyspark

    return pyspark.__version__


def jars_dir_for(name: str, spark_version: str | None = None) -> Path:
    digest = hashlib.sha256(pom_text(name, spark_version).encode()).hexdigest()[:12]
    return cache_dir() / "jars" / f"{name}-{digest}"


def is_complete(directory: Path) -> bool:
    """True when ``directory`` holds every jar its manifest lists."""
    manifest = directory / _MANIFEST
    if not manifest.is_file():
        return False
    names = [line for line in manifest.read_text().splitlines() if line.strip()]
    return bool(names) and all((directory / n).is_file() for n in names)


def write_manifest(directory: Path) -> None:
    names = sorted(p.name for p in directory.glob("*.jar"))
    (directory / _MANIFEST).write_text("\n".join(names) + "\n")


def ensure_jars(name: str, spark_version: str | None = None) -> Path:
    """The directory of ``name``'s jars, downloading them with Maven on first use."""
    override = jars_override_dir(name) if name != "spark-kafka" else None
    if override is not None:
        return _checked_override(name, override)
    target = jars_dir_for(name, spark_version)
    if is_complete(target):
        logger.debug("jars cached service=%s dir=%s", name, target)
        return target
    _copy_dependencies(name, target, pom_text(name, spark_version))
    return target


def _checked_override(name: str, directory: Path) -> Path:
    if not any(directory.glob("*.jar")):
        raise ServiceError(f"H3SPARK_JARS_DIR is set, but {directory} holds no jars for the {name} service. "
                           f"Put the runtime jars of h3spark/services/poms/{name}.xml there, "
                           "or unset H3SPARK_JARS_DIR to download them with Maven.")
    return directory


def find_maven() -> str:
    mvn = os.environ.get("H3SPARK_MVN") or shutil.which("mvn")
    if not mvn:
        raise ServiceError("the jars of the local services are downloaded with Maven, and no 'mvn' is on PATH. "
                           "Install Maven (e.g. apt-get install maven), or set H3SPARK_JARS_DIR to a directory "
                           "holding <service>/*.jar (kafka, hdfs) downloaded elsewhere.")
    return mvn


def _copy_dependencies(name: str, target: Path, pom: str) -> None:
    mvn = find_maven()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=target.parent) as work:
        work_dir = Path(work)
        (work_dir / "pom.xml").write_text(pom)
        out_dir = work_dir / "jars"
        logger.warning("downloading the %s jars with Maven (once; cached in %s)", name, target.parent)
        run_maven(mvn, work_dir, ["dependency:copy-dependencies", f"-DoutputDirectory={out_dir}",
                                  "-DincludeScope=runtime"], what=f"the {name} jars")
        write_manifest(out_dir)
        if target.exists():
            shutil.rmtree(target)
        out_dir.rename(target)


def run_maven(mvn: str, work_dir: Path, goals: list[str], what: str) -> None:
    """Run Maven in batch mode; a failure becomes a ServiceError with the tail of its output."""
    log_path = work_dir / "mvn.log"
    with open(log_path, "w") as log:
        try:
            code = subprocess.run([mvn, "-B", "-q", *goals], cwd=work_dir, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=_MVN_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    if code != 0:
        raise maven_error(what, log_path.read_text(errors="replace"), code)


_OFFLINE_MARKERS = ("UnknownHost", "Connection refused", "connect timed out", "Could not transfer",
                    "Network is unreachable", "Temporary failure in name resolution",
                    "No plugin found for prefix")  # an empty ~/.m2 that cannot reach any repository


def maven_error(what: str, output: str, code: object) -> ServiceError:
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)
    lines = [line for line in output.strip().splitlines() if line.strip() not in ("", "[ERROR]")]
    tail = "\n".join("    " + line for line in lines[-8:])
    offline = any(marker in output for marker in _OFFLINE_MARKERS)
    cause = "Maven Central could not be reached" if offline else f"Maven failed (exit {code})"
    return ServiceError(f"could not download {what}: {cause}. The first start needs network access to Maven "
                        "Central (or a mirror in ~/.m2/settings.xml); later starts use the cache. "
                        "Alternatively set H3SPARK_JARS_DIR to a directory holding <service>/*.jar.\n"
                        f"  last lines of mvn:\n{tail}")


SPARK_KAFKA_ARTIFACT = "spark-sql-kafka-0-10_2.13"


def spark_kafka_versions(version: str) -> list[str]:
    """Versions of Spark's Kafka source to try, in order: pyspark's own, its earlier patch
    releases, then the previous minor's first release.

    A pyspark release can reach PyPI before its jars reach Maven Central (4.3.0 did; 4.2.0 is there).
    """
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        raise ServiceError(f"pyspark's version {version!r} is not MAJOR.MINOR.PATCH; cannot choose Spark's Kafka source.")
    major, minor, patch = (int(part or 0) for part in match.groups())
    earlier = [f"{major}.{minor}.{p}" for p in range(patch, -1, -1)]
    return earlier + ([f"{major}.{minor - 1}.0"] if minor > 0 else [])


def _version_file() -> Path:
    return cache_dir() / "jars" / f"spark-kafka-for-pyspark-{pyspark_version()}.version"


def spark_kafka_package() -> str:
    """The Maven coordinate of Spark's Kafka source for ``spark.jars.packages``.

    The version :func:`ensure_spark_kafka_package` resolved, else the first candidate of
    :func:`spark_kafka_versions` already in the local Maven repository. Raises ServiceError
    when neither is known: guessing pyspark's own version could name a jar that does not exist.
    """
    path = _version_file()
    if path.is_file():
        return _coordinate(path.read_text().strip())
    candidates = spark_kafka_versions(pyspark_version())
    for version in candidates:
        if _in_local_repo(version):
            return _coordinate(version)
    raise ServiceError(f"Spark's Kafka source ({SPARK_KAFKA_ARTIFACT}) for pyspark {pyspark_version()} has not been "
                       f"resolved: none of the versions {', '.join(candidates)} is in {maven_repo_dir()}. Resolve it "
                       "once with network access: h3spark services up kafka (or h3spark.services."
                       "ensure_spark_kafka_package()).")


def _coordinate(version: str) -> str:
    return f"org.apache.spark:{SPARK_KAFKA_ARTIFACT}:{version}"


def ensure_spark_kafka_package() -> str:
    """Resolve Spark's Kafka source into ``~/.m2`` (once) and return its coordinate.

    Spark's Ivy resolution reads the local Maven repository first, so later
    ``spark.jars.packages=<coordinate>`` finds it without the network. The versions of
    :func:`spark_kafka_versions` are tried in order; the first on Maven Central is used and recorded.

    >>> spark = SparkSession.builder.config("spark.jars.packages", ensure_spark_kafka_package()).getOrCreate()
    """
    recorded = _version_file()
    if recorded.is_file():
        version = recorded.read_text().strip()
        if _in_local_repo(version) and is_complete(jars_dir_for("spark-kafka", version)):
            return _coordinate(version)
    missing = []
    for version in spark_kafka_versions(pyspark_version()):
        try:
            ensure_jars("spark-kafka", version)
        except ServiceError as error:
            if not is_not_found(str(error)):
                raise
            missing.append(version)
            continue
        recorded.parent.mkdir(parents=True, exist_ok=True)
        recorded.write_text(version + "\n")
        if missing:
            logger.warning("using %s %s with pyspark %s: %s not on Maven Central", SPARK_KAFKA_ARTIFACT, version,
                           pyspark_version(), " and ".join(missing) + (" is" if len(missing) == 1 else " are"))
        return _coordinate(version)
    raise ServiceError(f"Spark's Kafka source ({SPARK_KAFKA_ARTIFACT}) is on Maven Central in none of the "
                       f"versions {', '.join(missing)} (tried for pyspark {pyspark_version()}); install a pyspark "
                       "whose release is there.")


def is_not_found(maven_output: str) -> bool:
    """True when Maven said that an artifact does not exist (as opposed to a network failure)."""
    return "Could not find artifact" in maven_output or "was not found in" in maven_output


def _in_local_repo(version: str) -> bool:
    artifact = SPARK_KAFKA_ARTIFACT
    return (maven_repo_dir() / "org/apache/spark" / artifact / version / f"{artifact}-{version}.jar").is_file()


def jdbc_driver_jars() -> list[str]:
    """Paths of PostgreSQL's JDBC driver and its dependencies (poms/postgres-jdbc.xml), for ``spark.jars``."""
    return sorted(str(p) for p in ensure_jars("postgres-jdbc").glob("*.jar"))


def spark_kafka_jars() -> list[str]:
    """Paths of the Kafka source and its dependencies, for ``spark.jars`` (no Ivy at all)."""
    version = ensure_spark_kafka_package().rsplit(":", 1)[1]
    return sorted(str(p) for p in jars_dir_for("spark-kafka", version).glob("*.jar"))
