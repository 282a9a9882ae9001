"""Checkpoints on file:// or hdfs://: ``CKPT_URI/step-00000100/`` holding named files.

Each checkpoint is published atomically (``_SUCCESS`` last), so a job killed while
writing leaves no half checkpoint behind, and ``latest_checkpoint`` only sees whole ones.
Files are framework formats without pickle (MXNet's NDArray files, safetensors-like
raw arrays for torch) plus one ``checkpoint.json``.
"""

from __future__ import annotations

import json
import logging
import re

from h3spark.errors import StorageError
from h3spark.storage import filesystem_for, is_published, join_uri, publishing

logger = logging.getLogger(__name__)

_STEP_DIR = re.compile(r"^step-(\d{8})$")
META_NAME = "checkpoint.json"


def checkpoint_uri_for(root: str, step: int) -> str:
    return join_uri(root, f"step-{step:08d}")


def save_checkpoint(root: str, step: int, files: dict[str, bytes], meta: dict) -> str:
    """Publish ``files`` and ``meta`` (JSON) as the checkpoint of ``step``; return its URI."""
    uri = checkpoint_uri_for(root, step)
    fs = filesystem_for(uri)
    with publishing(uri, overwrite=True, fs=fs) as tmp_uri:
        fs.makedirs(tmp_uri)
        for name, data in files.items():
            fs.write_bytes(join_uri(tmp_uri, name), data)
        fs.write_bytes(join_uri(tmp_uri, META_NAME), json.dumps({"step": step, **meta}, indent=2).encode())
    logger.info("checkpoint saved step=%d uri=%s", step, uri)
    return uri


def latest_checkpoint(root: str) -> str | None:
    """The URI of the newest complete checkpoint under ``root``, or None."""
    fs = filesystem_for(root)
    if not fs.exists(root):
        return None
    steps = sorted((int(m.group(1)) for name in fs.listdir(root) if (m := _STEP_DIR.match(_basename(name)))), reverse=True)
    for step in steps:
        uri = checkpoint_uri_for(root, step)
        if is_published(uri, fs):
            return uri
    return None


def load_checkpoint(uri: str, names: tuple[str, ...]) -> tuple[dict, dict[str, bytes]]:
    """``(meta, {name: bytes})`` of a published checkpoint."""
    fs = filesystem_for(uri)
    if not is_published(uri, fs):
        raise StorageError(f"{uri} is not a complete checkpoint (no _SUCCESS marker). Resume from another one.")
    meta = json.loads(fs.read_bytes(join_uri(uri, META_NAME)))
    return meta, {name: fs.read_bytes(join_uri(uri, name)) for name in names if fs.exists(join_uri(uri, name))}


def _basename(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]
