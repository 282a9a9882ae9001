"""``h3spark serve``: models over HTTP with the Open Inference Protocol (KServe V2 REST endpoints).

    >>> app = InferenceApp({"digits": find_model("checkpoints/digits").load()})   # a WSGI application
    >>> server = InferenceServer(app, host="127.0.0.1", port=0).start()           # in a thread
    >>> requests.post(f"{server.url}/v2/models/digits/infer", json={"inputs": [...]}).json()["outputs"]
    >>> server.stop()

Endpoints: ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2`` (server metadata),
``GET /v2/models/NAME[/versions/V]`` (model metadata), ``GET /v2/models/NAME[/versions/V]/ready``
and ``POST /v2/models/NAME[/versions/V]/infer`` (see :mod:`h3spark.serve._v2`). Errors answer
``{"error": MESSAGE}`` with 400 (a bad request), 404 (no such model, version or path) or 405.

Werkzeug (already in the pinned environment) parses and routes requests, and its threaded
server answers each connection in a thread (HTTP/1.1 keep-alive). A model answers one request
at a time (its lock): MXNet's front end is not thread-safe, and one numpy or torch forward pass
over a batch already uses the cores it is given. Each request's predictions are computed alone
(no batching of concurrent requests).
"""

from __future__ import annotations

import json
import logging
import socket
import threading

import numpy as np
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from h3spark.serve._model import ServedModel
from h3spark.serve._v2 import BINARY_HEADER, ProtocolError, infer_response, metadata, parse_infer

logger = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
MAX_BODY_BYTES = 64 << 20
SERVER_NAME = "h3spark"

_MODEL = "/v2/models/<name>"
_RULES = [("/v2/health/live", "live", "GET"), ("/v2/health/ready", "ready", "GET"), ("/v2", "server", "GET")]
_RULES += [(f"{_MODEL}{version}{tail}", endpoint, method) for version in ("", "/versions/<version>")
           for tail, endpoint, method in (("", "model", "GET"), ("/ready", "model_ready", "GET"), ("/infer", "infer", "POST"))]


class InferenceApp:
    """A WSGI application serving ``models`` (name -> ServedModel) by the Open Inference Protocol."""

    def __init__(self, models: dict[str, ServedModel]):
        self.models = dict(models)
        self._locks = {name: threading.Lock() for name in self.models}
        self.url_map = Map([Rule(path, endpoint=endpoint, methods=[method]) for path, endpoint, method in _RULES],
                           strict_slashes=False)

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        try:
            endpoint, values = self.url_map.bind_to_environ(environ).match()
            response = _json(getattr(self, f"_{endpoint}")(request, **values))
        except ProtocolError as error:
            response = _json({"error": error.message}, error.status)
        except HTTPException as error:
            response = _json({"error": f"{error.name}: {error.description}"}, error.code or 500)
        return response(environ, start_response)

    def _live(self, request) -> dict:
        return {"live": True}

    def _ready(self, request) -> dict:
        return {"ready": True}  # models are loaded before the server starts

    def _server(self, request) -> dict:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("h3spark")
        except PackageNotFoundError:
            number = "unknown"
        return {"name": SERVER_NAME, "version": number, "extensions": []}

    def _model(self, request, name: str, version: str | None = None) -> dict:
        return metadata(name, self._find(name, version))

    def _model_ready(self, request, name: str, version: str | None = None) -> dict:
        self._find(name, version)
        return {"name": name, "ready": True}

    def _infer(self, request, name: str, version: str | None = None) -> dict:
        model = self._find(name, version)
        if BINARY_HEADER in request.headers:
            raise ProtocolError(f"the binary tensor data extension ({BINARY_HEADER}) is not supported; send the "
                                "tensors' data as JSON lists.")
        parsed = parse_infer(request.get_data(cache=False), name, model)
        if len(parsed.features):
            with self._locks[name]:
                probabilities = model.predict(parsed.features)
        else:
            probabilities = np.zeros((0, len(model.classes)), np.float32)
        return infer_response(name, model, parsed, probabilities)

    def _find(self, name: str, version: str | None) -> ServedModel:
        model = self.models.get(name)
        if model is None:
            raise ProtocolError(f"no model {name!r} here; this server has {', '.join(sorted(self.models))}.", 404)
        if version is not None and version != str(model.version):
            raise ProtocolError(f"model {name!r} has no version {version!r}; it has version {model.version}.", 404)
        return model


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


class _LoggingHandler(WSGIRequestHandler):
    """Werkzeug's handler with its per-request lines on h3spark's logger at DEBUG, not printed on stderr."""

    def log_request(self, code="-", size="-") -> None:
        logger.debug("%s %s %s %s", self.command, getattr(self, "path", "-"), code, size)

    def log(self, type: str, message: str, *args) -> None:  # noqa: A002 - werkzeug's signature
        getattr(logger, "warning" if type == "error" else "debug")(message, *args)


class InferenceServer:
    """``app`` on ``host:port`` (0: a free port), answering each connection in its own thread."""

    def __init__(self, app: InferenceApp, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        self.app = app
        # bound here, so a port in use is an OSError for the caller (werkzeug's make_server would exit the process)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family) as listening:
            self._server = make_server(host, listening.getsockname()[1], app, threaded=True,
                                       request_handler=_LoggingHandler, fd=listening.fileno())
        self.host, self.port = host, self._server.socket.getsockname()[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "InferenceServer":
        """Serve in a daemon thread (tests, benchmarks); :meth:`stop` ends it."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="h3spark-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C (or :meth:`stop` from another thread)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(10.0)
            self._server.server_close()
