"""Parameters and optimizer state of a Gluon Trainer as bytes, without pickle.

Gluon's ``Trainer.save_states`` pickles the optimizer; a checkpoint read back from
shared storage must not be unpickled, so the state (the slots) is saved as an MXNet
NDArray file (``"<index>.<slot>"`` keys) plus a JSON description of its structure
and the optimizer's update counters.
"""

from __future__ import annotations

import os
import tempfile

import mxnet as mx

from h3spark.errors import StorageError


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


def params_to_bytes(net) -> bytes:
    return ndarrays_to_bytes({name: p.data().copy() for name, p in net.collect_params().items()})


def load_params(net, data: bytes) -> None:
    arrays = bytes_to_ndarrays(data)
    params = net.collect_params()
    missing = sorted(set(params.keys()) - set(arrays))
    if missing:
        raise StorageError(f"the checkpoint has no values for parameters {missing}; it was written by another model.")
    for name, param in params.items():
        param.set_data(arrays[name])


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
