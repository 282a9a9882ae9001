"""The envelope: one actor message as bytes, readable by any Kafka client with numpy and json.

    >>> from h3spark.actors import Envelope, encode, decode
    >>> data = encode(Envelope("predictions", "teacher", model_version=120, computed_with=118,
    ...                        arrays={"logits": logits}, meta={"temperature": 4.0}))
    >>> decode(data).arrays["logits"].shape
    (256, 10)

Layout, schema version 1 (docs/actors.md is the reference; all integers little-endian):

    bytes 0-3    magic b"H3AE"
    bytes 4-5    schema version, uint16 (1)
    bytes 6-7    flags, uint16, 0 in version 1
    bytes 8-11   header length H, uint32
    12 .. 12+H   header: a UTF-8 JSON object (kind, sender, id, created_ns, model_version,
                 computed_with, meta, arrays)
    then         zero bytes up to P, the next multiple of 64
    P ..         the arrays' raw C-order bytes; array i starts at P + arrays[i].offset (a multiple
                 of 64, so arrays can be viewed in place) and the message ends where the last ends

The decoder only reads: it checks every field and bound, refuses anything else with an
EnvelopeError naming the reason, and returns arrays as read-only views of the message (no copy).
"""

from __future__ import annotations

import json
import math
import random
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from h3spark.errors import EnvelopeError

SCHEMA_VERSION = 1
MAGIC = b"H3AE"
PREFIX = struct.Struct("<4sHHI")
ALIGN = 64
KINDS = ("raw", "features", "predictions", "gradients", "parameters", "control", "chunk")
COMPUTED_WITH_KINDS = ("predictions", "gradients")
DTYPES = ("|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8", "<c8", "<c16")
HEADER_KEYS = ("kind", "sender", "id", "created_ns", "model_version", "computed_with", "meta", "arrays")
ARRAY_KEYS = ("name", "dtype", "shape", "offset")
_HEADER_KEY_SET, _ARRAY_KEY_SET = frozenset(HEADER_KEYS), frozenset(ARRAY_KEYS)
ITEMSIZES = {dtype: np.dtype(dtype).itemsize for dtype in DTYPES}
_HEADER_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # json.dumps would build one per call
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version and variant bits of a uuid4
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
DEFAULT_MAX_MESSAGE_BYTES = 512 * 2**20
MAX_HEADER_BYTES = 2**20
MAX_ARRAYS = 4096
MAX_NDIM = 32
MAX_SENDER_CHARS = 256


def new_message_id() -> str:
    """32 lowercase hex digits, random (a uuid4's layout).

    The bits come from ``random``, which is seeded from the OS and seeded again in a forked child:
    ``uuid.uuid4()`` reads os.urandom, a system call that hands the interpreter to other threads
    (the Kafka client's) once per message.
    """
    return f"{random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


@dataclass(frozen=True)
class Envelope:
    """One message: who sent it, what it is, at which model version, and its arrays by name.

    ``model_version`` is the sender's training step (None for a sender without a model);
    ``computed_with`` is the model version a prediction or gradient was computed with (required
    for those kinds), so a receiver can tell how stale it is. ``meta`` is small JSON.
    """

    kind: str
    sender: str
    model_version: int | None = None
    computed_with: int | None = None
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_message_id)
    created_ns: int = field(default_factory=time.time_ns)
    schema_version: int = SCHEMA_VERSION


def _refuse(reason: str, detail: str) -> EnvelopeError:
    return EnvelopeError(reason, f"refused an actor message ({reason}): {detail}")


def _check_fields(kind, sender, message_id, created_ns, model_version, computed_with, meta) -> None:
    """The header's scalar fields, the same rules for encoding and decoding."""
    if kind not in KINDS:
        raise _refuse("unknown_kind", f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(sender, str) or not 0 < len(sender) <= MAX_SENDER_CHARS:
        raise _refuse("malformed", f"sender must be a non-empty string of at most {MAX_SENDER_CHARS} "
                                   f"characters. Got {sender!r:.80} instead")
    if not isinstance(message_id, str) or len(message_id) != 32 or message_id.strip("0123456789abcdef"):
        raise _refuse("malformed", f"id must be 32 lowercase hex digits. Got {message_id!r:.80} instead")
    for name, value, required in (("created_ns", created_ns, True), ("model_version", model_version, False),
                                  ("computed_with", computed_with, kind in COMPUTED_WITH_KINDS)):
        if (value is not None or required) and (type(value) is not int or value < 0):
            raise _refuse("malformed", f"{name} of a {kind} message must be an integer >= 0"
                                       f"{'' if required else ' or null'}. Got {value!r:.80} instead")
    if type(meta) is not dict and not isinstance(meta, Mapping):
        raise _refuse("malformed", f"meta must be a JSON object. Got {type(meta).__name__} instead")


def _layout(arrays: Mapping[str, np.ndarray]) -> tuple[list[dict], list[np.ndarray], int]:
    """The header's array entries, the little-endian contiguous arrays, and the payload's length."""
    entries, contiguous, end = [], [], 0
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind in "biufc" and array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        if not isinstance(name, str) or array.dtype.str not in DTYPES:
            raise _refuse("bad_array", f"array {name!r} has dtype {array.dtype}; an envelope carries numeric "
                                       f"or bool arrays named by strings ({', '.join(DTYPES)})")
        offset = -(-end // ALIGN) * ALIGN
        entries.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape), "offset": offset})
        contiguous.append(np.ascontiguousarray(array))
        end = offset + array.nbytes
    return entries, contiguous, end


def encode(envelope: Envelope) -> bytearray:
    """The envelope as one buffer: prefix, JSON header, aligned raw arrays (one copy of the data)."""
    e = envelope
    _check_fields(e.kind, e.sender, e.id, e.created_ns, e.model_version, e.computed_with, e.meta)
    entries, contiguous, payload_bytes = _layout(e.arrays)
    header = {"kind": e.kind, "sender": e.sender, "id": e.id, "created_ns": e.created_ns,
              "model_version": e.model_version, "computed_with": e.computed_with, "meta": dict(e.meta),
              "arrays": entries}
    try:
        text = _HEADER_JSON.encode(header).encode()
    except (TypeError, ValueError) as error:
        raise _refuse("malformed", f"meta must be plain JSON (no NaN, no objects): {error}") from None
    start = -(-(PREFIX.size + len(text)) // ALIGN) * ALIGN
    out = bytearray(start + payload_bytes)
    PREFIX.pack_into(out, 0, MAGIC, SCHEMA_VERSION, 0, len(text))
    out[PREFIX.size:PREFIX.size + len(text)] = text
    for entry, array in zip(entries, contiguous):
        begin = start + entry["offset"]
        out[begin:begin + array.nbytes] = memoryview(array.reshape(-1)).cast("B")  # one memcpy, under the GIL
    return out


def _read_header(view: memoryview, max_bytes: int) -> tuple[dict, int]:
    """The parsed JSON header and the payload's start, after the prefix's checks."""
    if len(view) > max_bytes:
        raise _refuse("oversized", f"{len(view)} bytes, over the limit of {max_bytes} bytes")
    if len(view) < PREFIX.size:
        raise _refuse("malformed", f"{len(view)} bytes, shorter than the {PREFIX.size}-byte prefix")
    magic, version, flags, header_bytes = PREFIX.unpack_from(view, 0)
    if magic != MAGIC:
        raise _refuse("not_an_envelope", f"it starts with {bytes(magic)!r}, not {MAGIC!r}")
    if version != SCHEMA_VERSION:
        raise _refuse("unknown_version", f"schema version {version}; this decoder reads version {SCHEMA_VERSION}")
    if flags != 0 or header_bytes > MAX_HEADER_BYTES or PREFIX.size + header_bytes > len(view):
        raise _refuse("malformed", f"flags {flags}, header of {header_bytes} bytes in a message of {len(view)}")
    try:
        header = json.loads(bytes(view[PREFIX.size:PREFIX.size + header_bytes]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _refuse("malformed", f"the header is not UTF-8 JSON: {error}") from None
    if not isinstance(header, dict) or header.keys() != _HEADER_KEY_SET:
        keys = sorted(header) if isinstance(header, dict) else type(header).__name__
        raise _refuse("malformed", f"the header must be an object with exactly the keys {', '.join(HEADER_KEYS)}. "
                                   f"Got {keys} instead")
    return header, -(-(PREFIX.size + header_bytes) // ALIGN) * ALIGN


def _read_arrays(view: memoryview, entries, start: int) -> dict[str, np.ndarray]:
    """Read-only views of the payload, after checking each entry's name, dtype, shape and bounds."""
    if not isinstance(entries, list) or len(entries) > MAX_ARRAYS:
        raise _refuse("bad_array", f"arrays must be a list of at most {MAX_ARRAYS} entries")
    arrays, end = {}, start
    for entry in entries:
        if not isinstance(entry, dict) or entry.keys() != _ARRAY_KEY_SET:
            raise _refuse("bad_array", f"an array entry must have exactly the keys {', '.join(ARRAY_KEYS)}")
        name, dtype, shape, offset = (entry[key] for key in ARRAY_KEYS)
        ok_shape = isinstance(shape, list) and len(shape) <= MAX_NDIM and all(
            type(size) is int and size >= 0 for size in shape)
        if not isinstance(name, str) or name in arrays or dtype not in DTYPES or not ok_shape:
            raise _refuse("bad_array", f"array {name!r:.80}: needs a new name, a dtype of {', '.join(DTYPES)} "
                                       f"and a shape of at most {MAX_NDIM} sizes >= 0")
        count = math.prod(shape)
        nbytes = count * ITEMSIZES[dtype]
        begin = start + offset if type(offset) is int and offset % ALIGN == 0 else -1
        if begin < end or begin + nbytes > len(view):
            raise _refuse("bad_array", f"array {name!r} at offset {offset} ({nbytes} bytes) does not fit the "
                                       f"message's {len(view) - start} payload bytes in order, aligned to {ALIGN}")
        arrays[name] = np.frombuffer(view, dtype=dtype, count=count, offset=begin).reshape(shape)
        end = begin + nbytes
    if end != len(view):
        raise _refuse("malformed", f"{len(view) - end} bytes after the last array")
    return arrays


def decode(data, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Envelope:
    """The envelope in ``data`` (bytes-like), or an EnvelopeError whose ``reason`` says why not.

    The arrays are views of ``data`` (read-only when ``data`` is bytes): copy one to change it.
    """
    view = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else memoryview(data)
    header, start = _read_header(view, max_bytes)
    h = header
    _check_fields(h["kind"], h["sender"], h["id"], h["created_ns"], h["model_version"], h["computed_with"], h["meta"])
    arrays = _read_arrays(view, h["arrays"], start)
    return Envelope(h["kind"], h["sender"], h["model_version"], h["computed_with"], arrays, h["meta"], h["id"],
                    h["created_ns"], SCHEMA_VERSION)
