"""Layer options as parameters: a search space or a trial's params set options of a spec's layers.

    >>> spec = {"input_shape": [64], "layers": [{"type": "dense", "name": "hidden", "units": 32, "activation": "relu"},
    ...                                         {"type": "dense", "name": "logits", "units": 10}]}
    >>> merged, rest = apply_overrides(spec, {"layers.hidden.units": 64, "lr": 0.01})
    >>> merged["layers"][0]["units"], rest
    (64, {'lr': 0.01})

A key ``layers.NAME.OPTION`` sets OPTION (any option of that layer type: units, filters,
kernel, rate, activation, ...) of the layer named NAME, which is the layer's ``name`` or,
for a layer without one, the name the spec gives it (``dropout0``, ``maxpool1``, ...).
"""

from __future__ import annotations

import copy
from typing import Any

from h3spark.config import layer_keys
from h3spark.errors import ConfigError
from h3spark.train.engines.spec import ModelSpec


def apply_overrides(spec: dict[str, Any], params: dict[str, Any] | None,
                    where: str = "experiment.model.spec") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(spec with every layers.NAME.OPTION of params set, the other params)``; ``spec`` and
    ``params`` are left unchanged. The trainers of experiments call it with the trial's params
    (fixed params merged with the sampled ones), then build ``ModelSpec.from_dict(merged)`` and
    read their training options from the rest. A key naming no layer, ``type`` or ``name``, or
    not of the form layers.NAME.OPTION is a ConfigError; the merged spec is checked by
    ``ModelSpec.from_dict``, not here.
    """
    params = dict(params or {})
    overrides = {key: params[key] for key in layer_keys(params)}
    rest = {key: value for key, value in params.items() if key not in overrides}
    if not overrides:
        return spec, rest
    names = [layer.name for layer in ModelSpec.from_dict(spec, where).layers]  # the spec's own naming rule
    merged = copy.deepcopy(spec)
    for key, value in overrides.items():
        parts = key.split(".")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise ConfigError(where, [f"{key!r}: a layer's option is set as layers.NAME.OPTION, e.g. layers.hidden.units."])
        _, name, option = parts
        if name not in names:
            raise ConfigError(where, [f"{key!r}: the model has no layer {name!r}; its layers are {names}."])
        if option in ("type", "name"):
            raise ConfigError(where, [f"{key!r}: a layer's {option} cannot vary (its weights are named by it); "
                                      "vary its options, e.g. units or rate."])
        merged["layers"][names.index(name)][option] = value
    return merged, rest


def check_model_spec(spec: dict[str, Any], where: str = "training.model", params: dict[str, Any] | None = None) -> ModelSpec:
    """The spec with ``params``' layer overrides applied, read and checked (a ConfigError naming
    the layer and both shapes when one cannot follow another). Config validation calls it
    through ``h3spark.train.validation_context()``."""
    merged, _ = apply_overrides(spec, params, where)
    return ModelSpec.from_dict(merged, where)
