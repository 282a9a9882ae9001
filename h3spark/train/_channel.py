"""A JSON-lines channel between launch tasks and the driver.

Tasks report ``started``, each line of their children's output and ``failure``
events as they happen, so the driver fails the whole job at the first failure
(naming rank, role, host and output tail) instead of waiting for Spark's retries.
The channel is also the tasks' all-gather (task 0 shares the rendezvous address):
the driver answers as soon as the last task's item arrives, where Spark's
``BarrierTaskContext.allGather`` polls once a second and costs 1-2 s per call.
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
CONNECT_TIMEOUT_S = 30.0


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        channel: DriverChannel = self.server.channel  # type: ignore[attr-defined]
        channel.connections.add(self.request)
        try:
            while True:
                line = self.rfile.readline(MAX_MESSAGE_BYTES)
                if not line:
                    return
                channel.receive(line, self.wfile)
        finally:
            channel.connections.discard(self.request)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _GatherPoint:
    """One all-gather round at a time: each task's item; every task gets the list once all arrived."""

    def __init__(self, num_tasks: int, token: str):
        self._num_tasks, self._token = num_tasks, token
        self._lock = threading.Lock()
        self._items: dict[int, str] = {}
        self._replies: dict[int, object] = {}

    def add(self, task, item, reply) -> None:
        if not isinstance(task, int) or not 0 <= task < self._num_tasks or not isinstance(item, str):
            logger.warning("dropped a gather message with task %r on the launch channel", task)
            return
        with self._lock:
            self._items[task], self._replies[task] = item, reply
            if len(self._items) < self._num_tasks:
                return
            items, replies = [self._items[t] for t in range(self._num_tasks)], list(self._replies.values())
            self._items, self._replies = {}, {}
        data = (json.dumps({"token": self._token, "kind": "gathered", "items": items}) + "\n").encode()
        for writer in replies:
            try:
                writer.write(data)
            except OSError:  # that task is gone; the driver hears of it on the channel or from Spark
                logger.warning("a launch task left before the gather's answer reached it")


class DriverChannel:
    """Listens on ``host``; ``events`` is a queue of the dicts the tasks sent (gathers are answered here)."""

    def __init__(self, host: str = "127.0.0.1", num_tasks: int = 1):
        self.token = new_token()
        self.events: queue.Queue = queue.Queue()
        self.connections: set[socket.socket] = set()
        self._gather = _GatherPoint(num_tasks, self.token)
        self._server = _Server((host, 0), _Handler)
        self._server.channel = self  # type: ignore[attr-defined]
        self.address = (host, self._server.server_address[1])
        # shutdown() waits for the serving loop's next look at its flag: 0.05 s, not socketserver's 0.5 s, per launch
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="h3spark-channel")

    def __enter__(self) -> "DriverChannel":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        for connection in list(self.connections):  # a task still waiting on a gather gets EOF, not silence
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def receive(self, raw: bytes, reply=None) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("dropped a malformed message on the launch channel")
            return
        if not take_token(message, self.token):
            logger.warning("dropped a message without this job's token on the launch channel")
            return
        if message.get("kind") == "gather" and reply is not None:
            self._gather.add(message.get("task"), message.get("item"), reply)
            return
        self.events.put(message)


class TaskChannel:
    """The task side: one connection, one JSON object per line each way."""

    def __init__(self, host: str, port: int, token: str, task: int):
        self._sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        self._sock.settimeout(None)  # a gather waits for the slowest task; the driver cancels a stuck launch
        self._answers = self._sock.makefile("rb")
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

    def all_gather(self, item: str) -> list[str]:
        """Send ``item``; return every task's item in task order, once all tasks sent theirs."""
        self.send("gather", item=item)
        line = self._answers.readline(MAX_MESSAGE_BYTES)
        if not line:
            raise ConnectionError("the driver closed the launch channel before every task reached the gather "
                                  "(the launch was cancelled or the driver ended)")
        answer = json.loads(line)
        if not take_token(answer, self._token) or answer.get("kind") != "gathered":
            raise ConnectionError(f"the launch channel answered the gather with {str(answer)[:200]!r}, not this job's items")
        return list(answer["items"])

    def close(self) -> None:
        self._answers.close()
        self._sock.close()
