"""JSON lines over TCP: the one wire format between the driver and trial slots.

Trial results and metrics cross process and machine boundaries as JSON only.
"""

from __future__ import annotations

import json
import math
import socket
from typing import Any

import numpy as np

MAX_LINE_BYTES = 16 << 20


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


class Connection:
    """A client connection that sends a message and reads the one-line reply."""

    def __init__(self, address: tuple[str, int], timeout_s: float | None = None):
        self._sock = socket.create_connection(address, timeout=10)
        self._sock.settimeout(timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = self._sock.makefile("rb")

    def request(self, message: dict) -> dict:
        self._sock.sendall(encode(message))
        line = self._reader.readline(MAX_LINE_BYTES)
        if not line:
            raise ConnectionError("the experiment driver closed the connection")
        return json.loads(line)

    def close(self) -> None:
        try:
            self._reader.close()
        finally:
            self._sock.close()
