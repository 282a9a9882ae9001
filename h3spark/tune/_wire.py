"""JSON lines over TCP: the one wire format between the driver and trial slots.

Trial results and metrics cross process and machine boundaries as JSON only, without
NaN or infinity, and every message a client sends carries the experiment's token.
"""

from __future__ import annotations

import json
import math
import socket
from typing import Any

import numpy as np

from h3spark.errors import JobFailedError
from h3spark.transport import TOKEN_FIELD

MAX_LINE_BYTES = 16 << 20
LEASE_S = 60.0  # a slot renews its trial's lease every quarter of this; the dispatcher gives up after it


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays to Python, NaN/inf to None: what json.dumps accepts strictly."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode(message: dict) -> bytes:
    return json.dumps(jsonable(message), separators=(",", ":")).encode() + b"\n"


def decode(raw: bytes | str) -> Any:
    """JSON as the wire allows it: NaN and Infinity are refused (ValueError), as encode never writes them."""
    return json.loads(raw, parse_constant=_refuse_constant)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed on the wire")


class Connection:
    """A client connection that sends a message (with the token) and reads the one-line reply.

    A reply ``{"error": ...}`` means the driver refused the message; it raises JobFailedError.
    """

    def __init__(self, address: tuple[str, int], token: str, timeout_s: float | None = None):
        self._token = token
        self._sock = socket.create_connection(address, timeout=10)
        self._sock.settimeout(timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = self._sock.makefile("rb")

    def request(self, message: dict) -> dict:
        self._sock.sendall(encode({**message, TOKEN_FIELD: self._token}))
        line = self._reader.readline(MAX_LINE_BYTES)
        if not line:
            raise ConnectionError("the experiment driver closed the connection")
        reply = decode(line)
        if "error" in reply:
            raise JobFailedError(f"the experiment driver refused a {message.get('op')!r} message: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            self._reader.close()
        finally:
            self._sock.close()
