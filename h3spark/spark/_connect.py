"""Spark Connect: launches through a resident Spark driver instead of a JVM of their own.

    >>> spark = connect_session("sc://127.0.0.1:15002")     # h3spark services up connect
    >>> is_connect(spark), server_master(spark)
    (True, 'local[2]')

Spark starts a pool of Python workers for each Connect session (keyed by the session's artifact
UUID, SPARK-54055), so a new session pays their start, 3-4 s here, on its first Python job.
h3spark's sessions therefore share one server session per user and server (``launch_session_id``)
and never release it: the next CLI process finds its Python workers, and their imports, warm. A
session the server has closed (released by someone, or expired) is replaced by a fresh one.
Sharing is safe for what h3spark runs there: each launch tags its own operations, sets no
session conf and creates no views.
"""

from __future__ import annotations

import getpass
import logging
import socket
import sys
import urllib.parse
import uuid

from h3spark.errors import ServiceError, UsageError

logger = logging.getLogger(__name__)

SCHEME = "sc://"
DEFAULT_PORT = 15002  # Spark Connect's
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_connect(spark) -> bool:
    """True for a Spark Connect session (pyspark.sql.connect), False for a classic one."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def launch_session_id(url: str, user: str | None = None) -> str:
    """The server session h3spark's processes share on ``url``: the same for a user and server, a UUID (v4 form)."""
    derived = uuid.uuid5(uuid.NAMESPACE_URL, f"h3spark:{user or getpass.getuser()}@{url}")
    return str(uuid.UUID(bytes=derived.bytes, version=4))


def with_session_id(url: str, session_id: str) -> str:
    """``url`` with ``session_id`` among its parameters, unless it names one already."""
    if not url.startswith(SCHEME):
        raise UsageError(f"a Spark Connect URL starts with {SCHEME}, e.g. sc://127.0.0.1:15002. Got {url!r} instead.")
    if "session_id=" in url:
        return url
    return f"{url};session_id={session_id}" if "/;" in url else f"{url.rstrip('/')}/;session_id={session_id}"


def connect_session(url: str):
    """A session on the Spark Connect server at ``url``: this process's open one, else h3spark's shared
    one (see the module docstring)."""
    open_session = _open_session()
    if open_session is not None:
        return open_session
    require_server(url)
    try:
        return _session(with_session_id(url, launch_session_id(url)))
    except Exception as error:  # noqa: BLE001 - only a closed session is retried; the rest is raised
        if "SESSION_CLOSED" not in str(error):
            raise
        logger.warning("the Spark Connect server at %s closed h3spark's shared session; this process uses a new one "
                       "(its first Python job starts the session's workers)", url)
        return _session(with_session_id(url, str(uuid.uuid4())))


def require_server(url: str, timeout_s: float = 5.0) -> None:
    """Fail at once when nothing listens at ``url`` (pyspark's client would retry for minutes)."""
    address = urllib.parse.urlparse(url.replace(SCHEME, "http://", 1))
    host, port = address.hostname or "", address.port or DEFAULT_PORT
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        raise ServiceError(f"no Spark Connect server answers at {url} ({host}:{port}: {error.strerror or error}). "
                           "Start the local one with: h3spark services up connect; or correct spark.remote "
                           "(--remote).") from None


def _session(url: str):
    from pyspark.sql.connect.session import SparkSession as RemoteSession

    spark = RemoteSession.builder.remote(url).create()
    spark.release_session_on_close = False  # stop() closes this process's channel; the server keeps the session
    server_master(spark)  # a round trip: a closed session or an unreachable server fails here
    return spark


def server_master(spark) -> str:
    """The master of the server's driver (``local[2]``, ``spark://...``)."""
    return spark.conf.get("spark.master")


def channel_host(spark) -> str:
    """The address of this machine the server's tasks can reach: loopback when the server's driver
    listens on loopback (same machine), else the local address that routes towards it."""
    driver = spark.conf.get("spark.driver.host", "127.0.0.1")
    if driver in _LOOPBACK:
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((driver, 9))  # a UDP connect sends nothing; it picks the route and so our address
        return probe.getsockname()[0]


def stop_connect_sessions() -> None:
    """Close this process's Spark Connect channel, if it opened one (the server keeps the session)."""
    session = _open_session()
    if session is not None:
        session.release_session_on_close = False
        session.stop()


def _open_session():
    """This process's Spark Connect session (any thread's), if one is open; pyspark's connect module is
    not imported for it (a second of imports a classic process does not need)."""
    if "pyspark.sql.connect.session" not in sys.modules:
        return None
    from pyspark.sql.connect.session import SparkSession as RemoteSession

    session = RemoteSession.getActiveSession() or RemoteSession._get_default_session()
    return session if session is not None and not session.is_stopped else None
