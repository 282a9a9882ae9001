"""torch's home in h3spark: the one import (with its install hint) and the model contract's
:class:`TorchModel` (both from ``torch_model``), and saving a torch module a user's trial built
itself (:func:`save_module`).

    >>> path = save_module(net, "model_dir", {"note": "my resnet"})

The DDP engine (``engines.torch``) and tune's torch trials build, train, score and save through
TorchModel. torch is imported when a function here is called, never at import of h3spark.
"""

from __future__ import annotations

import json
import os

import numpy as np

from h3spark.train.engines.torch_model import TorchModel, import_torch  # torch imported lazily

__all__ = ["TorchModel", "import_torch", "save_module"]

SPEC_KEY = "h3spark"  # the safetensors metadata entry holding the caller's description (JSON)


def save_module(module, directory: str, spec: dict | None = None) -> str:
    """The module's state_dict as ``model.safetensors`` (``spec``, any JSON the caller gives, in
    its metadata), or ``model.npz`` without safetensors; neither holds a pickle."""
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    try:
        from safetensors.torch import save_file
    except ImportError:
        path = os.path.join(directory, "model.npz")
        np.savez(path, **{name: tensor.numpy() for name, tensor in state.items()})
        return path
    path = os.path.join(directory, "model.safetensors")
    save_file(state, path, metadata={"format": "pt", SPEC_KEY: json.dumps(spec or {})})
    return path
