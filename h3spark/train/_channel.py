"""A JSON-lines channel from launch tasks back to the driver.

Tasks report ``started``, each line of their children's output and ``failure``
events as they happen, so the driver fails the whole job at the first failure
(naming rank, role, host and output tail) instead of waiting for Spark's retries.
Only JSON travels here, never pickle, and every message carries the job's random
token; anything else is dropped.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import socketserver
import threading

from h3spark.transport import new_token, take_token

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1 << 20


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        channel: DriverChannel = self.server.channel  # type: ignore[attr-defined]
        while True:
            line = self.rfile.readline(MAX_MESSAGE_BYTES)
            if not line:
                return
            channel.receive(line)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DriverChannel:
    """Listens on ``host``; ``events`` is a queue of the dicts the tasks sent."""

    def __init__(self, host: str = "127.0.0.1"):
        self.token = new_token()
        self.events: queue.Queue = queue.Queue()
        self._server = _Server((host, 0), _Handler)
        self._server.channel = self  # type: ignore[attr-defined]
        self.address = (host, self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="h3spark-channel")

    def __enter__(self) -> "DriverChannel":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def receive(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("dropped a malformed message on the launch channel")
            return
        if not take_token(message, self.token):
            logger.warning("dropped a message without this job's token on the launch channel")
            return
        self.events.put(message)


class TaskChannel:
    """The task side: one connection, one JSON object per line."""

    def __init__(self, host: str, port: int, token: str, task: int):
        self._sock = socket.create_connection((host, port), timeout=30)
        self._token = token
        self._task = task
        self._lock = threading.Lock()

    def send(self, kind: str, **fields) -> None:
        message = {"token": self._token, "kind": kind, "task": self._task, **fields}
        data = (json.dumps(message) + "\n").encode()
        with self._lock:
            try:
                self._sock.sendall(data)
            except OSError:  # the driver is gone; the stage is being torn down anyway
                pass

    def close(self) -> None:
        self._sock.close()
