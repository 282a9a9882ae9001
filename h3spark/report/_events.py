"""Scalars from TensorBoard event files (``events.out.tfevents.*``), as tensorboardX writes them.

An event file is a sequence of TFRecords: an 8-byte length, the masked CRC-32C of the length, the
data (one serialised ``Event``), the masked CRC-32C of the data. A record cut short at the end of
the file is one still being written (or a killed writer's last): it is ignored, as TensorBoard
does. A record whose checksum does not match is damage, and a DataError names the file and offset.

    >>> read_scalars("h3spark-work/logs/quickstart/events.out.tfevents.1700000000.host")
    {'train/loss': [(10, 2.19), (20, 1.87), ...], 'train/samples_per_s': [(40, 5123.0)]}
"""

from __future__ import annotations

import os
import struct

from h3spark.errors import DataError
from h3spark.train._tensorboard import import_tensorboardx

EVENTS_MARK = "tfevents"
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


def event_files(folder: str) -> list[str]:
    """The event files directly in ``folder``, oldest first (their names start with the time)."""
    if not os.path.isdir(folder):
        return []
    names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file() and EVENTS_MARK in entry.name)
    return [os.path.join(folder, name) for name in names]


def read_scalars(path: str) -> dict[str, list[tuple[int, float]]]:
    """Tag -> ``(step, value)`` of every scalar in one event file, in the order written."""
    tensorboardx = import_tensorboardx()
    event_type = tensorboardx.proto.event_pb2.Event
    scalars: dict[str, list[tuple[int, float]]] = {}
    for offset, data in _records(path, tensorboardx.record_writer.masked_crc32c):
        try:
            event = event_type.FromString(data)
        except Exception as error:  # protobuf's DecodeError: the data passed its checksum, yet is no Event
            raise DataError(f"{path}: the record at byte {offset} is not a TensorBoard event ({error}). "
                            "The file is damaged; remove it, or re-run what wrote it.") from None
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            if value.WhichOneof("value") == "simple_value":
                scalars.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return scalars


def read_folder_scalars(folder: str) -> list[tuple[str, dict[str, list[tuple[int, float]]]]]:
    """``(path, scalars)`` of each event file directly in ``folder``, oldest first: each run of a
    training writes its own file (a resumed run goes on from its step, a new run starts again at 0)."""
    return [(path, read_scalars(path)) for path in event_files(folder)]


def started_at(path: str) -> str:
    """When the writer of an event file started (its name holds the time), e.g. ``11-28 23:09:23 UTC``."""
    import time

    parts = os.path.basename(path).split(".")
    stamp = parts[3] if len(parts) > 3 and parts[3].isdigit() else None
    return time.strftime("%m-%d %H:%M:%S UTC", time.gmtime(int(stamp))) if stamp else os.path.basename(path)


def _records(path: str, masked_crc32c):
    """``(offset, data)`` of each complete record of ``path``; a DataError at the first bad checksum."""
    with open(path, "rb") as handle:
        content = handle.read()
    offset = 0
    while offset + _HEADER.size <= len(content):
        length, length_crc = _HEADER.unpack_from(content, offset)
        if masked_crc32c(content[offset:offset + 8]) != length_crc:
            raise DataError(f"{path}: the record at byte {offset} has a bad length checksum, so the file is not a "
                            "TensorBoard event file or it is damaged. Remove it, or re-run what wrote it.")
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if end + _FOOTER.size > len(content):
            break  # cut short: the record being written when the file was read
        (data_crc,) = _FOOTER.unpack_from(content, end)
        if masked_crc32c(content[start:end]) != data_crc:
            raise DataError(f"{path}: the record at byte {offset} has a bad data checksum; the file is damaged. "
                            "Remove it, or re-run what wrote it.")
        yield offset, content[start:end]
        offset = end + _FOOTER.size
