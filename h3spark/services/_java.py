"""Finding a Java runtime of the required version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from h3spark.errors import ServiceError

MIN_JAVA_MAJOR = 17
_INSTALL_HINT = ("install Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless) "
                 "or point JAVA_HOME at one")


def find_java() -> str:
    """Path of the ``java`` executable: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
        raise ServiceError(f"JAVA_HOME={java_home} has no bin/java; {_INSTALL_HINT}.")
    found = shutil.which("java")
    if not found:
        raise ServiceError(f"the local services need Java, and no 'java' is on PATH; {_INSTALL_HINT}.")
    return found


def parse_java_major(version_output: str) -> int | None:
    """The major version from ``java -version`` output (``1.8.0_292`` → 8, ``17.0.15`` → 17)."""
    match = re.search(r'version "([^"]+)"', version_output)
    if not match:
        return None
    parts = match.group(1).split(".")
    major = parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0]
    digits = re.match(r"\d+", major)
    return int(digits.group(0)) if digits else None


def check_java(java: str | None = None) -> str:
    """Return the java executable, or raise ServiceError when it is missing or older than 17."""
    java = java or find_java()
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except OSError as error:
        raise ServiceError(f"cannot run {java}: {error}; {_INSTALL_HINT}.") from None
    major = parse_java_major(result.stderr + result.stdout)
    return require_java_major(java, major)


def require_java_major(java: str, major: int | None) -> str:
    if major is None:
        raise ServiceError(f"cannot tell the version of {java} ('java -version' said nothing usable); {_INSTALL_HINT}.")
    if major < MIN_JAVA_MAJOR:
        raise ServiceError(f"the local services need Java {MIN_JAVA_MAJOR} or newer; {java} is Java {major}. "
                           f"To fix: {_INSTALL_HINT}.")
    return java


def java_home_of(java: str) -> str:
    """JAVA_HOME for a java executable (resolving symlinks such as /usr/bin/java)."""
    return str(Path(java).resolve().parent.parent)
