"""The bridge's wire format: binary frames for arrays, JSON text frames for everything else.

    >>> data = encode_frame(WEIGHTS, layout.flatten(weights), version=12)
    >>> frame = decode_frame(data, layout.size)
    >>> frame.kind, frame.version, frame.values.shape
    (1, 12, (5130,))

A binary frame is a 16-byte header and float32 little-endian values (docs/web.md):

    bytes 0-3    magic b"H3WB"
    byte 4       kind: 1 weights (master -> worker), 2 gradients (worker -> master),
                 3 data (rows for a worker), 4 examples (raw rows from a worker's user)
    byte 5       format version (1)
    bytes 6-7    uint16 steps: minibatch gradients summed in a gradients frame (else 0)
    bytes 8-11   uint32 version: the weights' version (weights), the version a gradient was computed on
    bytes 12-15  uint32 rows: samples behind a gradient; rows of a data or examples frame
    16 ..        weights, gradients: every trainable weight, flattened, in the layout's order;
                 data, examples: rows x features float32, then rows int32 labels

Nothing else is read from a frame: a wrong length, a non-finite value or an unknown kind is a
:class:`FrameError` naming why, answered with an error frame.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"H3WB"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sBBHII")
WEIGHTS, GRADIENTS, DATA, EXAMPLES = 1, 2, 3, 4
KIND_NAMES = {WEIGHTS: "weights", GRADIENTS: "gradients", DATA: "data", EXAMPLES: "examples"}
MAX_UINT16, MAX_UINT32 = 2**16 - 1, 2**32 - 1


class FrameError(ValueError):
    """A frame the bridge refuses; ``code`` is what the error frame says (bad_frame, bad_message, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Frame:
    """A decoded binary frame: ``values`` (float32, flat) and, for rows, ``labels`` (int32)."""

    kind: int
    version: int
    steps: int
    rows: int
    values: np.ndarray
    labels: np.ndarray | None = None


class Layout:
    """Where each trainable weight (``LAYER.PARAM``) sits in a flat vector, in spec order."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        self.entries: list[tuple[str, tuple[int, ...], int]] = []
        offset = 0
        for name, shape in shapes.items():
            self.entries.append((name, tuple(shape), offset))
            offset += math.prod(shape)
        self.size = offset

    def flatten(self, weights: dict[str, np.ndarray]) -> np.ndarray:
        out = np.empty(self.size, np.float32)
        for name, shape, offset in self.entries:
            out[offset:offset + math.prod(shape)] = np.asarray(weights[name], np.float32).reshape(-1)
        return out

    def unflatten(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Views of ``flat``, one per weight, in their shapes."""
        return {name: flat[offset:offset + math.prod(shape)].reshape(shape) for name, shape, offset in self.entries}

    def to_json(self) -> list[dict]:
        return [{"name": name, "shape": list(shape), "offset": offset} for name, shape, offset in self.entries]


def encode_frame(kind: int, values: np.ndarray, version: int = 0, steps: int = 0, rows: int = 0,
                 labels: np.ndarray | None = None) -> bytes:
    """One binary frame: the header, ``values`` as float32 and, for rows, ``labels`` as int32."""
    if kind not in KIND_NAMES or not (0 <= steps <= MAX_UINT16 and 0 <= version <= MAX_UINT32 and 0 <= rows <= MAX_UINT32):
        raise ValueError(f"a frame has a kind of {sorted(KIND_NAMES)}, steps < 2**16, version and rows < 2**32. "
                         f"Got kind {kind}, steps {steps}, version {version}, rows {rows} instead")
    parts = [HEADER.pack(MAGIC, kind, FORMAT_VERSION, steps, version, rows),
             np.ascontiguousarray(values, "<f4").tobytes()]
    if labels is not None:
        parts.append(np.ascontiguousarray(labels, "<i4").tobytes())
    return b"".join(parts)


def decode_frame(data: bytes, parameters: int, features: int = 0, max_rows: int = 100_000) -> Frame:
    """Read a binary frame; ``parameters`` is the layout's size, ``features`` the width of a row."""
    if len(data) < HEADER.size:
        raise FrameError("bad_frame", f"a binary frame starts with a {HEADER.size}-byte header; got {len(data)} bytes")
    magic, kind, version_format, steps, version, rows = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version_format != FORMAT_VERSION:
        raise FrameError("bad_frame", f"a binary frame starts with {MAGIC!r} and format {FORMAT_VERSION}; got "
                                      f"{bytes(magic)!r} and format {version_format}")
    if kind not in KIND_NAMES:
        raise FrameError("bad_frame", f"unknown frame kind {kind}; the kinds are {KIND_NAMES}")
    body = len(data) - HEADER.size
    if kind in (WEIGHTS, GRADIENTS):
        if body != 4 * parameters:
            raise FrameError("bad_frame", f"a {KIND_NAMES[kind]} frame holds {parameters} float32 values "
                                          f"({4 * parameters} bytes after the header); got {body} bytes")
        values = np.frombuffer(data, "<f4", parameters, HEADER.size)
        _finite(values, kind)
        return Frame(kind, version, steps, rows, values)
    if not 0 < rows <= max_rows or body != rows * (4 * features + 4):
        raise FrameError("bad_frame", f"a {KIND_NAMES[kind]} frame of {rows} rows (1 to {max_rows}) holds "
                                      f"{rows} x {features} float32 values and {rows} int32 labels; got {body} bytes")
    values = np.frombuffer(data, "<f4", rows * features, HEADER.size).reshape(rows, features)
    labels = np.frombuffer(data, "<i4", rows, HEADER.size + 4 * rows * features)
    _finite(values, kind)
    return Frame(kind, version, steps, rows, values, labels)


def _finite(values: np.ndarray, kind: int) -> None:
    if not np.isfinite(values).all():
        raise FrameError("bad_frame", f"a {KIND_NAMES[kind]} frame holds {int((~np.isfinite(values)).sum())} "
                                      "values that are NaN or infinite")


def kind_name(data: bytes) -> str:
    """The kind of a binary frame, for error messages ("binary" when it is no frame)."""
    if len(data) >= HEADER.size and data[:4] == MAGIC:
        return KIND_NAMES.get(data[4], "binary")
    return "binary"


def parse_message(text: str, max_bytes: int) -> dict:
    """A text frame as a JSON object with a string ``type``; anything else is a FrameError."""
    if len(text) > max_bytes:
        raise FrameError("too_large", f"a text frame is at most {max_bytes} characters; got {len(text)}")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise FrameError("bad_message", f"a text frame is a JSON object: {error}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise FrameError("bad_message", 'a text frame is a JSON object with a "type", e.g. {"type": "hello"}')
    return message


def error_message(code: str, message: str, ref: str | None = None) -> str:
    """The error frame a client gets for a message the bridge refused."""
    return json.dumps({"type": "error", "code": code, "message": message, "ref": ref})
