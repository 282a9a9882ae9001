"""The one SparkSession factory every h3spark path uses.

    >>> spark = get_spark(SparkConfig(master="local[2]", app_name="demo"))
    >>> starting = start_spark(config)      # the JVM starts while the caller imports and checks
    >>> spark = starting.result()

A master set by spark-submit (or an already running session) always wins over the
config. Spark's own log noise is kept at WARN; h3spark logs through ``logging``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from h3spark.config import SparkConfig
from h3spark.errors import UsageError
from h3spark.spark._connect import connect_session, stop_connect_sessions
from h3spark.spark._jvm_archive import jvm_archive_options
from h3spark.spark._logs import quiet_task_failures

logger = logging.getLogger(__name__)

# Defaults a user's spark.conf may override: executors run the driver's interpreter,
# and blocks travel as Arrow batches.
_DEFAULT_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.ui.showConsoleProgress": "true",
    "spark.sql.session.timeZone": "UTC",
}
_LOOPBACK = "127.0.0.1"
_LOCAL_CONF = {
    "spark.driver.host": _LOOPBACK,
    "spark.driver.bindAddress": _LOOPBACK,
}
_LOCAL_MASTERS = ("local", "spark://127.", "spark://localhost")
_WILDCARDS = ("0.0.0.0", "::", "[::]")
# A driver JVM that only runs a launch's barrier stage needs no C2 compiler: C1 alone spends
# about half the CPU of a default start (JIT threads compete with everything else on 2 cores).
LAUNCH_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def get_spark(config: SparkConfig | None = None, launch_only: bool = False):
    """Return the process's SparkSession (made in any thread), or build one from ``config``.

    ``launch_only``: the session will run launches only (the CLI's ``train`` and ``launch``), so
    its JVM starts with LAUNCH_JAVA_OPTIONS. Every driver JVM uses the class-data archive once
    ``build_jvm_archive`` has made it (see ``_jvm_archive``). A config that sets
    spark.driver.extraJavaOptions replaces both.

    ``config.remote`` (a Spark Connect server) gives a Connect session instead, with no JVM here
    (see ``_connect``); launches run on it, other work needs a classic session."""
    from pyspark.sql import SparkSession

    config = config or SparkConfig()
    if config.remote:
        if not launch_only:
            raise UsageError(f"spark.remote ({config.remote}, Spark Connect) runs launches only: 'h3spark train' with "
                              "engine mxnet or torch, 'h3spark launch', h3spark.train.launch/distributed. This work "
                              "needs a classic session: remove spark.remote from the config and set spark.master.")
        return connect_session(config.remote)
    active = SparkSession.getActiveSession() or _running_default_session()
    if active is not None:
        return active
    started = time.monotonic()
    submitted = _submitted_conf()
    master = submitted.get("spark.master", None) or config.master
    builder = SparkSession.builder.appName(submitted.get("spark.app.name", None) or config.app_name).master(master)
    for key, value in _conf_for(master, config, submitted, launch_only).items():
        builder = builder.config(key, value)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    ui_address = _ui_bind_address(master, config, os.environ)
    if ui_address:  # read by the JVM pyspark is about to start (one per process)
        os.environ["SPARK_LOCAL_IP"] = ui_address
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(config.log_level)
    quiet_task_failures(spark.sparkContext, config.log_level)
    logger.info("spark session ready master=%s app=%s in %.1f s", master, spark.sparkContext.appName,
                time.monotonic() - started)
    return spark


def effective_master(config: SparkConfig | None = None) -> str:
    """The master ``get_spark(config)`` runs on: a running session's, else spark-submit's, else the config's.

    >>> effective_master(SparkConfig(master="local[2]"))   # under spark-submit --master spark://...: that one
    'local[2]'
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession() or _running_default_session()
    if active is not None:
        return active.sparkContext.master
    if config is not None and config.remote:
        return config.remote
    return _submitted_conf().get("spark.master", None) or (config or SparkConfig()).master


def _running_default_session():
    """The session another thread of this process built (the active one is per thread), unless stopped."""
    from pyspark.sql import SparkSession

    session = SparkSession._instantiatedSession
    return session if session is not None and session.sparkContext._jsc is not None else None


class SparkStart:
    """``get_spark`` running in a daemon thread; ``result()`` waits for the session (or raises its error)."""

    def __init__(self, config: SparkConfig | None, launch_only: bool):
        self._session, self._error = None, None
        self._thread = threading.Thread(target=self._build, args=(config, launch_only), daemon=True, name="h3spark-spark-start")
        self._thread.start()

    def _build(self, config, launch_only: bool) -> None:
        try:
            self._session = get_spark(config, launch_only)
        except BaseException as error:  # noqa: BLE001 - raised in the caller's thread by result()
            self._error = error

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._session


def start_spark(config: SparkConfig | None = None, launch_only: bool = False) -> SparkStart:
    """Start ``get_spark(config, launch_only)`` now, in the background: the JVM's 3+ s overlap
    whatever the caller does until it needs the session (imports, a job's checks)."""
    return SparkStart(config, launch_only)


def _submitted_conf():
    """spark-submit's settings (master, conf) when run under it; empty otherwise."""
    from pyspark import SparkConf, SparkContext

    if not os.environ.get("PYSPARK_GATEWAY_PORT"):  # not under spark-submit
        # (a JVM left by an earlier session in this process keeps that session's builder
        # options as system properties; they are not spark-submit's and must not win)
        return SparkConf(loadDefaults=False)
    SparkContext._ensure_initialized()  # spark-submit's JVM holds its settings
    return SparkConf()


def _ui_bind_address(master: str, config: SparkConfig, environ) -> str | None:
    """Where the driver's web UI will listen, as ``SPARK_LOCAL_IP`` for a driver on this machine.

    Spark binds its UI to ``SPARK_LOCAL_IP``, else to every interface (``spark.driver.bindAddress``
    does not reach it). A local master keeps it on loopback; a config widens it with
    ``spark.conf: {spark.driver.bindAddress: ...}``, the environment with ``SPARK_LOCAL_IP``.
    None: leave it to Spark (a cluster master, whose executors must reach the driver: setting
    ``SPARK_LOCAL_IP`` to a bind address such as 0.0.0.0 would make that the driver's host).
    """
    local = master.startswith(_LOCAL_MASTERS)
    bind = config.conf.get("spark.driver.bindAddress")
    if bind is not None and (local or str(bind) not in _WILDCARDS):
        return str(bind)
    if not local:  # SPARK_LOCAL_IP also becomes the host executors are told to reach: never a wildcard
        return None
    return environ.get("SPARK_LOCAL_IP") or _LOOPBACK


def _conf_for(master: str, config: SparkConfig, submitted, launch_only: bool = False) -> dict[str, str]:
    conf = dict(_DEFAULT_CONF)
    if master.startswith(_LOCAL_MASTERS):
        conf.update(_LOCAL_CONF)
    java_options = ([LAUNCH_JAVA_OPTIONS] if launch_only else []) + jvm_archive_options()
    if java_options:
        conf["spark.driver.extraJavaOptions"] = " ".join(java_options)
    conf["spark.pyspark.python"] = sys.executable
    conf.update({key: _spark_value(value) for key, value in config.conf.items()})
    return {key: value for key, value in conf.items() if not submitted.contains(key)}


def _spark_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def stop_spark() -> None:
    """Stop the session this process holds, if any (used at the end of CLI commands and tests).

    The active session is per thread; one made in another thread (a launcher's) is still the
    process's default, which ``builder.getOrCreate()`` would hand back, so it is stopped too.
    A Spark Connect session's channel is closed; the server keeps the session (see ``_connect``)."""
    from pyspark.sql import SparkSession

    stop_connect_sessions()
    session = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if session is not None:
        session.stop()
