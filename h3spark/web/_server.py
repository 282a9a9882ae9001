"""The web server: the page, the worker page and the WebSocket (``/ws``) on one port, on the
``websockets`` library (its asyncio server), on an event loop in a thread of its own.

    >>> server = WebServer(config.web, token, hub)
    >>> server.start()                           # binds (127.0.0.1 by default) and serves
    'http://127.0.0.1:8765/'
    >>> server.stop()

HTTP requests other than the WebSocket's upgrade get the bundled static files (nothing is fetched
from outside the machine), ``/healthz``, or 404. Every request's ``Host`` must be one of the bridge's
own (or an allowed origin's host: DNS rebinding), and a WebSocket's ``Origin`` one of its own
origins or ``allowed_origins`` (a page elsewhere cannot use a visitor's browser to reach the bridge).
Messages over ``max_message_bytes`` close the connection (1009, the library's limit); everything
else a page sends is checked by its :class:`~h3spark.web._session.Session`.
"""

from __future__ import annotations

import asyncio
import http
import logging
import socket
import threading
from importlib import resources
from urllib.parse import urlsplit

from h3spark.errors import UsageError, missing_dependency
from h3spark.web._hub import TICK_S, Hub
from h3spark.web._session import Session

logger = logging.getLogger(__name__)

WS_PATH = "/ws"
STATIC = {"/": "index.html", "/worker": "worker.html", "/static/app.js": "app.js", "/static/charts.js": "charts.js",
          "/static/draw.js": "draw.js", "/static/client.js": "client.js", "/static/mlp.js": "mlp.js",
          "/static/worker_page.js": "worker_page.js", "/static/worker.js": "worker.js", "/static/style.css": "style.css"}
TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    "X-Frame-Options": "DENY"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _websockets():
    try:
        from websockets.asyncio.server import serve
        from websockets.datastructures import Headers
        from websockets.http11 import Response
    except ImportError:
        raise missing_dependency("websockets", "The web bridge (h3spark web)") from None
    return serve, Headers, Response


def static_files() -> dict[str, bytes]:
    """The page's files, read once from the package."""
    folder = resources.files("h3spark.web") / "static"
    return {path: (folder / name).read_bytes() for path, name in STATIC.items()}


class WebServer:
    """One port: pages over HTTP, the bridge's protocol over the WebSocket at ``/ws``."""

    def __init__(self, config, token: str, hub: Hub):
        self.config, self.token, self.hub = config, token, hub
        self.files = static_files()
        self.port: int | None = None
        self.allowed_origins: set[str] = set()
        self.allowed_hosts: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    def start(self) -> str:
        """Bind and serve on a thread; the page's URL. A port in use is a UsageError saying what to change."""
        try:
            sock = socket.create_server((self.config.host, self.config.port), reuse_port=False)
        except OSError as error:
            raise UsageError(f"cannot listen on {self.config.host}:{self.config.port}: {error.strerror}. Set web.port "
                             "to a free port (0: any), or stop what holds it.") from None
        self.port = sock.getsockname()[1]
        self._allow(self.port)
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="h3spark-web", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None:
            raise self._failure
        return self.url

    def _allow(self, port: int) -> None:
        host = self.config.host
        names = LOOPBACK if host in LOOPBACK else (*LOOPBACK, socket.gethostname()) if host in ("0.0.0.0", "::", "") \
            else (host,)
        for name in names:
            netloc = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
            self.allowed_hosts.add(netloc)
            self.allowed_origins.add(f"http://{netloc}")
        for origin in self.config.allowed_origins:
            self.allowed_origins.add(origin.rstrip("/"))
            self.allowed_hosts.add(urlsplit(origin).netloc)

    def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main(sock))
        except BaseException as error:  # noqa: BLE001 - handed to start(), which raises it in the caller
            self._failure = error
            logger.exception("the web server stopped on an error")
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self, sock: socket.socket) -> None:
        serve, _, _ = _websockets()
        self._stopped = asyncio.Event()
        self.hub.loop = asyncio.get_running_loop()
        config = self.config
        async with serve(self._handler, sock=sock, process_request=self._process_request, compression=None,
                         max_size=config.max_message_bytes, server_header="h3spark-web"):
            ticker = asyncio.create_task(self._tick())
            self._ready.set()
            logger.info("serving %s", self.url)
            await self._stopped.wait()
            ticker.cancel()

    async def _tick(self) -> None:
        while True:
            try:
                self.hub.tick()
            except Exception:  # noqa: BLE001 - the server goes on; the failure is logged with its traceback
                logger.exception("the hub's periodic work failed")
            await asyncio.sleep(TICK_S)

    def _process_request(self, connection, request):
        """The static files, the health check, or (for ``/ws`` from an allowed origin) on to the WebSocket."""
        path = request.path.split("?", 1)[0]
        host = request.headers.get("Host", "")
        if host not in self.allowed_hosts:
            logger.warning("refused a request for host %r (allowed: %s) path=%s", host, sorted(self.allowed_hosts), path)
            return self._response(http.HTTPStatus.MISDIRECTED_REQUEST, "text/plain; charset=utf-8",
                                  f"unknown host {host!r}; add its origin to web.allowed_origins\n".encode())
        if path == WS_PATH:
            origin = request.headers.get("Origin")
            if origin is not None and origin not in self.allowed_origins:
                logger.warning("refused a WebSocket from origin %r (allowed: %s)", origin, sorted(self.allowed_origins))
                return self._response(http.HTTPStatus.FORBIDDEN, "text/plain; charset=utf-8",
                                      f"origin {origin!r} is not allowed; add it to web.allowed_origins\n".encode())
            return None
        if path == "/healthz":
            return self._response(http.HTTPStatus.OK, "text/plain; charset=utf-8", b"ok\n")
        if path in self.files:
            return self._response(http.HTTPStatus.OK, TYPES[STATIC[path].rsplit(".", 1)[1]], self.files[path])
        return self._response(http.HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    @staticmethod
    def _response(status: http.HTTPStatus, content_type: str, body: bytes):
        _, Headers, Response = _websockets()
        headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)), **SECURITY_HEADERS})
        return Response(status.value, status.phrase, headers, body)

    async def _handler(self, connection) -> None:
        from websockets.exceptions import ConnectionClosed

        # asyncio turns Nagle's algorithm off only for sockets whose proto is IPPROTO_TCP, and those accepted from
        # socket.create_server's listener have proto 0: without this, a reply sent right after another waited for
        # the page's delayed ACK (about 40 ms on Linux)
        connection.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = Session(self.hub, connection, self.token)
        try:
            await session.run()
        except ConnectionClosed as closed:  # a page that went away without closing (a tab killed)
            logger.info("a page went: %s peer=%s", closed, session.peer)

    def stop(self) -> None:
        """Close every connection and stop serving."""
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(30)
