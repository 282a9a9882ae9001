"""An actor's snapshots: its model, its fitted pipeline and its state, one folder per training step.

    SNAPSHOT_URI/step-00000340/model.safetensors   Model.save (any engine loads it)
                              pipeline.json        the fitted pipeline (Pipeline.to_json), when it has one
                              seen_ids.npy         the ids of the messages handled before it (uint8, one
                                                   row of 16 bytes per id, oldest first), so that a
                                                   restored actor skips them when they come again
                              state.json           step, the offsets handled per partition, counters

A snapshot is written into a temporary folder and renamed into place, ``state.json`` last, so a
folder without ``state.json`` (an actor killed while writing) is never read. The newest
``keep`` snapshots stay.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from dataclasses import dataclass

import numpy as np

from h3spark.actors._models import save_model
from h3spark.storage import filesystem_for, join_uri
from h3spark.train.engines.model import Model

STATE_NAME = "state.json"
MODEL_NAME = "model.safetensors"
PIPELINE_NAME = "pipeline.json"
SEEN_NAME = "seen_ids.npy"
ID_BYTES = 16
DEFAULT_KEEP = 2
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class Snapshot:
    """One complete snapshot: where it is, its step and its state."""

    uri: str
    step: int
    state: dict

    @property
    def model_uri(self) -> str:
        return join_uri(self.uri, MODEL_NAME)

    def pipeline_json(self) -> str | None:
        uri = join_uri(self.uri, PIPELINE_NAME)
        fs = filesystem_for(uri)
        return fs.read_bytes(uri).decode("utf-8") if fs.exists(uri) else None

    def seen_ids(self) -> list[str]:
        """The ids of the messages the snapshot's model holds, oldest first (none in an older snapshot)."""
        uri = join_uri(self.uri, SEEN_NAME)
        fs = filesystem_for(uri)
        if not fs.exists(uri):
            return []
        rows = np.load(io.BytesIO(fs.read_bytes(uri)), allow_pickle=False)
        if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != ID_BYTES:
            raise ValueError(f"{uri} holds {rows.dtype} {rows.shape}, not ids of {ID_BYTES} bytes; delete the snapshot")
        return [row.tobytes().hex() for row in rows]


class Snapshots:
    """The snapshots of one actor under ``uri``."""

    def __init__(self, uri: str, keep: int = DEFAULT_KEEP):
        self.uri, self.keep = uri, keep
        self._fs = filesystem_for(uri)

    def save(self, model: Model, state: dict, pipeline_json: str | None = None,
             seen_ids: list[str] | None = None) -> Snapshot:
        """Write a snapshot of ``model`` at its step (replacing one of the same step) and prune old ones;
        ``seen_ids``: the ids of the messages handled into it (32 hex digits each)."""
        self._fs.makedirs(self.uri)
        tmp = join_uri(self.uri, f".tmp-{uuid.uuid4().hex[:8]}")
        state = {**state, "step": model.step, "engine": model.engine, "saved_at": time.time()}
        save_model(model, join_uri(tmp, MODEL_NAME))
        if pipeline_json is not None:
            self._fs.write_bytes(join_uri(tmp, PIPELINE_NAME), pipeline_json.encode("utf-8"))
        if seen_ids:
            self._fs.write_bytes(join_uri(tmp, SEEN_NAME), _ids_npy(seen_ids))
        self._fs.write_bytes(join_uri(tmp, STATE_NAME), json.dumps(state, indent=1, sort_keys=True).encode())
        folder = join_uri(self.uri, f"step-{model.step:08d}")
        self._fs.delete(folder)
        self._fs.rename(tmp, folder)
        self._prune()
        return Snapshot(folder, model.step, state)

    def _complete(self) -> list[tuple[int, str]]:
        """(step, folder URI) of the complete snapshots, oldest first."""
        if not self._fs.exists(self.uri):
            return []
        found = []
        for name in self._fs.listdir(self.uri):
            match = _STEP_DIR.match(name)
            if match and self._fs.exists(join_uri(self.uri, name, STATE_NAME)):
                found.append((int(match.group(1)), join_uri(self.uri, name)))
        return sorted(found)

    def _prune(self) -> None:
        for _, folder in self._complete()[:-self.keep]:
            self._fs.delete(folder)
        for name in self._fs.listdir(self.uri):  # left by this actor's process killed while writing (one writer)
            if name.startswith(".tmp-"):
                self._fs.delete(join_uri(self.uri, name))

    def latest(self) -> Snapshot | None:
        """The newest complete snapshot, or None."""
        complete = self._complete()
        if not complete:
            return None
        step, folder = complete[-1]
        state = json.loads(self._fs.read_bytes(join_uri(folder, STATE_NAME)))
        return Snapshot(folder, step, state)


def _ids_npy(message_ids: list[str]) -> bytes:
    rows = np.frombuffer(bytes.fromhex("".join(message_ids)), dtype=np.uint8).reshape(-1, ID_BYTES)
    out = io.BytesIO()
    np.save(out, rows, allow_pickle=False)
    return out.getvalue()
