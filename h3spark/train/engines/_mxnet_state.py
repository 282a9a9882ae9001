"""The optimizer state of a Gluon Trainer as bytes, without pickle (the weights go into a
checkpoint as ``Model.save`` writes them).

Gluon's ``Trainer.save_states`` pickles the optimizer; a checkpoint read back from
shared storage must not be unpickled, so the state (the slots) is saved as an MXNet
NDArray file (``"<index>.<slot>"`` keys, the index of the weight in the trainer's list)
plus a JSON description of its structure and the optimizer's update counters.
"""

from __future__ import annotations

import os
import tempfile

import mxnet as mx


def ndarrays_to_bytes(arrays: dict) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "arrays.nd")
        mx.nd.save(path, arrays)
        with open(path, "rb") as handle:
            return handle.read()


def bytes_to_ndarrays(data: bytes) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "arrays.nd")
        with open(path, "wb") as handle:
            handle.write(data)
        return mx.nd.load(path)


def optimizer_state(trainer) -> tuple[dict, dict]:
    """``(arrays, structure)`` of the trainer's worker-side optimizer state."""
    updater = trainer._updaters[0]
    optimizer = trainer._optimizer
    arrays, slots = {}, {}
    for index, state in updater.states.items():
        parts = state if isinstance(state, (tuple, list)) else (state,)
        slots[str(index)] = {"tuple": isinstance(state, (tuple, list)), "present": [part is not None for part in parts]}
        for position, part in enumerate(parts):
            if part is not None:
                arrays[f"{index}.{position}"] = part.copy()
    counters = {"num_update": optimizer.num_update,
                "index_update_count": {str(k): v for k, v in optimizer._index_update_count.items()}}
    return arrays, {"slots": slots, "counters": counters}


def restore_optimizer_state(trainer, arrays: dict, structure: dict) -> None:
    """Put saved slots and counters back into a trainer that updates on the workers."""
    updater = trainer._updaters[0]
    optimizer = trainer._optimizer
    for index_text, slot in structure["slots"].items():
        index = int(index_text)
        parts = [arrays[f"{index}.{pos}"] if present else None for pos, present in enumerate(slot["present"])]
        updater.states[index] = tuple(parts) if slot["tuple"] else parts[0]
        updater.states_synced[index] = True
    optimizer.num_update = structure["counters"]["num_update"]
    optimizer._index_update_count.update({int(k): v for k, v in structure["counters"]["index_update_count"].items()})
