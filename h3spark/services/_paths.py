"""Where the local services keep downloaded jars (cache) and their running state."""

from __future__ import annotations

import os
from pathlib import Path

SERVICE_NAMES = ("kafka", "hdfs", "spark", "postgres", "connect")


def cache_dir() -> Path:
    """``$H3SPARK_CACHE_DIR``, else ``$XDG_CACHE_HOME/h3spark``, else ``~/.cache/h3spark``."""
    override = os.environ.get("H3SPARK_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "h3spark"


def state_dir() -> Path:
    """Configs, data, logs and pid files of the services: ``$H3SPARK_STATE_DIR``, else ``<cache>/services``."""
    override = os.environ.get("H3SPARK_STATE_DIR")
    return Path(override).expanduser() if override else cache_dir() / "services"


def service_dir(name: str) -> Path:
    return state_dir() / name


def postgres_password_file() -> Path:
    """The password of the local PostgreSQL's superuser (written at its first start, mode 0600):
    give it to a jdbc source or sink as ``password_file``."""
    return service_dir("postgres") / "password"


def jars_override_dir(name: str) -> Path | None:
    """``$H3SPARK_JARS_DIR/<name>`` when the variable is set: jars provided by hand, no Maven."""
    root = os.environ.get("H3SPARK_JARS_DIR")
    return Path(root).expanduser() / name if root else None


def maven_repo_dir() -> Path:
    """The local Maven repository (``~/.m2/repository``), which Spark's Ivy also reads."""
    return Path.home() / ".m2" / "repository"
