"""Torch state dicts as checkpoint files without pickle: safetensors, or numpy ``.npz`` without it.

``torch.save`` pickles, and a checkpoint may be read back from shared storage, so
checkpoints hold only raw tensors (safetensors when installed, else ``np.savez``
loaded with ``allow_pickle=False``) plus JSON for everything that is not a tensor.
"""

from __future__ import annotations

import io

import numpy as np
import torch

try:
    from safetensors.torch import load as _st_load
    from safetensors.torch import save as _st_save
except ImportError:  # pragma: no cover - depends on the environment
    _st_save = _st_load = None

TENSOR_SUFFIXES = (".safetensors", ".npz")


def tensor_file_name(stem: str) -> str:
    """The file name this environment writes for ``stem`` (``model.safetensors`` or ``model.npz``)."""
    return stem + (".safetensors" if _st_save is not None else ".npz")


def tensors_to_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    cpu = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    if _st_save is not None:
        return _st_save(cpu)
    buffer = io.BytesIO()
    np.savez(buffer, **{name: tensor.numpy() for name, tensor in cpu.items()})
    return buffer.getvalue()


def bytes_to_tensors(name: str, data: bytes) -> dict[str, torch.Tensor]:
    """Read a file written by ``tensors_to_bytes``; its suffix says which format."""
    if name.endswith(".safetensors"):
        if _st_load is None:
            raise ImportError(f"{name} needs the safetensors package: pip install safetensors")
        return _st_load(data)
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {key: torch.from_numpy(arrays[key].copy()) for key in arrays.files}


def optimizer_to_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (``slot/<param>/<name>``) and a JSON structure."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"slot/{index}/{name}"] = value
            else:
                scalars[f"{index}/{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_parts(tensors: dict[str, torch.Tensor], structure: dict) -> dict:
    """The ``state_dict`` that ``optimizer_to_parts`` split; for ``optimizer.load_state_dict``."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, index, name = key.split("/", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in structure.get("scalars", {}).items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": structure["param_groups"]}
