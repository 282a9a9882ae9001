"""The model spec: a network as a list of layers, the same for every engine (as Keras' Sequential).

    >>> spec = ModelSpec.from_dict({"input_shape": [1, 8, 8], "layers": [
    ...     {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "padding": 1, "activation": "relu"},
    ...     {"type": "maxpool", "size": 2}, {"type": "flatten"}, {"type": "dense", "name": "logits", "units": 10}]})
    >>> [(layer.name, shape) for layer, _, shape in spec.shapes()]
    [('conv1', (4, 8, 8)), ('maxpool0', (4, 4, 4)), ('flatten0', (64,)), ('logits', (10,))]
    >>> sorted(spec.param_shapes())
    ['conv1.bias', 'conv1.weight', 'logits.bias', 'logits.weight']
    >>> weights = spec.initial_weights(seed=0)   # numpy float32, drawn once for every engine

Each layer's shapes are checked when the spec is read: a layer that cannot follow the one
before is a ConfigError naming the layer and both shapes. Weights are named ``LAYER.PARAM``
with the layouts both MXNet and PyTorch use: dense ``weight`` (units, inputs); conv2d
``weight`` (filters, channels, kh, kw); batchnorm ``weight`` (gamma), ``bias`` (beta),
``running_mean`` and ``running_var``. Inputs are (channels, height, width) or (features,),
without the batch axis. Shapes here never import an engine.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

import numpy as np

from h3spark.errors import ConfigError

ACTIVATIONS = ("relu", "sigmoid", "tanh", "softrelu", "linear")
INIT_KINDS = ("normal", "uniform", "xavier", "kaiming", "zeros")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# the options each layer type takes (beyond type, name and init), with their defaults
LAYER_OPTIONS: dict[str, dict[str, Any]] = {
    "dense": {"units": None, "activation": "linear", "use_bias": True},
    "conv2d": {"filters": None, "kernel": None, "stride": 1, "padding": 0, "activation": "linear", "use_bias": True},
    "maxpool": {"size": 2, "stride": None, "padding": 0},
    "avgpool": {"size": 2, "stride": None, "padding": 0},
    "flatten": {},
    "dropout": {"rate": None},
    "batchnorm": {"momentum": 0.9, "epsilon": 1e-5},
    "activation": {"function": None},
}
PARAMETRIC = ("dense", "conv2d", "batchnorm")


@dataclass(frozen=True)
class Layer:
    """One layer: its ``type``, its unique ``name`` and its options (defaults filled in)."""

    type: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    init: dict[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        return self.options[key]

    def param_names(self) -> tuple[str, ...]:
        if self.type == "batchnorm":
            return ("weight", "bias", "running_mean", "running_var")
        if self.type in ("dense", "conv2d"):
            return ("weight", "bias") if self.options["use_bias"] else ("weight",)
        return ()


@dataclass(frozen=True)
class ModelSpec:
    """A checked network: ``input_shape`` (no batch axis), its ``layers`` and the default ``init``."""

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    init: dict[str, Any] = field(default_factory=lambda: {"kind": "xavier"})

    @classmethod
    def from_dict(cls, value: dict[str, Any], where: str = "training.model") -> ModelSpec:
        """Read and check a spec (the YAML mapping); any problem is a ConfigError naming ``where``."""
        problems: list[str] = []
        if not isinstance(value, dict):
            raise ConfigError(where, [f"a model spec is a mapping with input_shape and layers. Got {value!r} instead."])
        unknown = sorted(set(value) - {"input_shape", "layers", "init"})
        if unknown:
            problems.append(f"{unknown[0]!r} is no key of a model spec (input_shape, layers, init). Remove it.")
        input_shape = _shape(value.get("input_shape"), where)
        init = _init(value.get("init", {"kind": "xavier"}), f"{where}.init")
        raw = value.get("layers")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(where, ["'layers' must be a non-empty list of layers, e.g. [{type: dense, units: 10}]."])
        layers = _layers(raw, where, problems)
        if problems:
            raise ConfigError(where, problems)
        spec = cls(input_shape, tuple(layers), init)
        spec.check(where)
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON values; ``from_dict`` reads it back to an equal spec."""
        layers = []
        for layer in self.layers:
            entry = {"type": layer.type, "name": layer.name, **layer.options}
            if layer.init is not None:
                entry["init"] = dict(layer.init)
            layers.append(entry)
        return {"input_shape": list(self.input_shape), "init": dict(self.init), "layers": layers}

    def check(self, where: str = "training.model") -> None:
        """Walk the shapes; a layer that cannot follow its input is a ConfigError; the output must be flat."""
        *_, (last, _, output) = self.shapes(where)
        if len(output) != 1:
            raise ConfigError(where, [f"the model's output (layer {last.name!r}) must be flat, one score per class; "
                                      f"its shape is {output}. End with a flatten and a dense layer."])

    def shapes(self, where: str = "training.model") -> list[tuple[Layer, tuple[int, ...], tuple[int, ...]]]:
        """(layer, input shape, output shape) for each layer, batch axis left out."""
        rows, shape = [], self.input_shape
        for layer in self.layers:
            output = _output_shape(layer, shape, where)
            rows.append((layer, shape, output))
            shape = output
        return rows

    @cached_property  # the spec is frozen; each training step asks (the labels' check)
    def classes(self) -> int:
        """The number of outputs (the last layer's width)."""
        return self.shapes()[-1][2][0]

    @cached_property
    def features(self) -> int:
        return int(np.prod(self.input_shape))

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ConfigError("model", [f"the model has no layer {name!r}; its layers are {[l.name for l in self.layers]}."])

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every weight's name (``LAYER.PARAM``) and shape, in layer order."""
        shapes: dict[str, tuple[int, ...]] = {}
        for layer, before, _ in self.shapes():
            for name, shape in _param_shapes(layer, before).items():
                shapes[f"{layer.name}.{name}"] = shape
        return shapes

    def initial_weights(self, seed: int) -> dict[str, np.ndarray]:
        """Every weight drawn once with numpy from ``seed`` (float32), so every engine starts alike."""
        rng = np.random.default_rng(seed)
        weights: dict[str, np.ndarray] = {}
        for layer, before, _ in self.shapes():
            for name, shape in _param_shapes(layer, before).items():
                weights[f"{layer.name}.{name}"] = _draw(rng, layer, name, shape, layer.init or self.init)
        return weights

    def layer_of(self, weight_name: str) -> str:
        """The layer a weight belongs to: ``conv1`` for ``conv1.weight``."""
        return weight_name.rsplit(".", 1)[0]


def mlp_spec(input_shape, hidden, classes: int, dropout: float = 0.0, activation: str = "relu") -> ModelSpec:
    """The ``model: mlp`` shorthand as a spec: flatten, dense layers of ``hidden`` (each with
    dropout when > 0), then ``classes`` logits. Names: hidden0.., logits."""
    from h3spark.train.engines.mlp import check_dropout, mlp_widths

    shape = [int(size) for size in (input_shape if isinstance(input_shape, (list, tuple)) else [input_shape])]
    layers: list[dict[str, Any]] = [{"type": "flatten"}] if len(shape) > 1 else []
    for index, width in enumerate(mlp_widths(hidden)):
        layers.append({"type": "dense", "name": f"hidden{index}", "units": width, "activation": activation})
        if check_dropout(dropout):
            layers.append({"type": "dropout", "rate": float(dropout)})
    layers.append({"type": "dense", "name": "logits", "units": int(classes)})
    return ModelSpec.from_dict({"input_shape": shape, "layers": layers}, where="model (mlp)")


def iter_layer_weights(spec: ModelSpec, weights: dict[str, np.ndarray], layers: list[str] | None) -> Iterator[str]:
    """The weight names of ``layers`` (all when None), checking each layer exists."""
    wanted = None if layers is None else {spec.layer(name).name for name in layers}
    for name in weights:
        if wanted is None or spec.layer_of(name) in wanted:
            yield name


# --- reading ---------------------------------------------------------------------------------

def _shape(value, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not (isinstance(value, (list, tuple)) and len(value) in (1, 3) and all(_positive_int(v) for v in value)):
        raise ConfigError(where, [f"'input_shape' must be [features] or [channels, height, width] of positive ints. "
                                  f"Got {value!r} instead."])
    return tuple(int(v) for v in value)


def _init(value, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, dict) or value.get("kind") not in INIT_KINDS:
        raise ConfigError(where, [f"an init is {{kind: K, ...}} with K one of {list(INIT_KINDS)}. Got {value!r} instead."])
    allowed = {"normal": {"mean", "std"}, "uniform": {"low", "high"}, "xavier": {"gain"}, "kaiming": {"gain"}, "zeros": set()}
    extra = sorted(set(value) - {"kind"} - allowed[value["kind"]])
    if extra:
        raise ConfigError(where, [f"{extra[0]!r} is no option of the {value['kind']} init (it takes "
                                  f"{sorted(allowed[value['kind']]) or 'none'}). Remove it."])
    for key in set(value) - {"kind"}:
        if isinstance(value[key], bool) or not isinstance(value[key], (int, float)):
            raise ConfigError(where, [f"the init's {key!r} must be a number. Got {value[key]!r} instead."])
    if value.get("std", 1.0) <= 0 or value.get("gain", 1.0) <= 0 or value.get("low", -1.0) >= value.get("high", 1.0):
        raise ConfigError(where, [f"the init {value} is empty: std and gain must be > 0 and low < high."])
    return dict(value)


def _layers(raw: list, where: str, problems: list[str]) -> list[Layer]:
    layers, counts, names = [], {}, set()
    for index, entry in enumerate(raw):
        here = f"{where}.layers[{index}]"
        if not isinstance(entry, dict) or entry.get("type") not in LAYER_OPTIONS:
            problems.append(f"{here}: a layer is a mapping whose 'type' is one of {sorted(LAYER_OPTIONS)}. Got {entry!r} instead.")
            continue
        kind = entry["type"]
        name = entry.get("name") or f"{kind}{counts.get(kind, 0)}"
        counts[kind] = counts.get(kind, 0) + 1
        if not (isinstance(name, str) and _NAME.match(name)) or name in names:
            problems.append(f"{here}: the layer name {name!r} must be a unique identifier (letters, digits, _).")
            continue
        names.add(name)
        options = _options(kind, entry, f"{here} ({name})", problems)
        init = _init(entry["init"], f"{here}.init") if "init" in entry else None
        if init is not None and kind not in ("dense", "conv2d"):
            problems.append(f"{here} ({name}): only dense and conv2d layers take an init; remove it from this {kind} layer.")
        layers.append(Layer(kind, name, options, init))
    return layers


def _options(kind: str, entry: dict, here: str, problems: list[str]) -> dict[str, Any]:
    defaults = LAYER_OPTIONS[kind]
    extra = sorted(set(entry) - set(defaults) - {"type", "name", "init"})
    if extra:
        problems.append(f"{here}: {extra[0]!r} is no option of a {kind} layer (it takes {sorted(defaults) or 'none'}). Remove it.")
    options = {key: entry.get(key, default) for key, default in defaults.items()}
    for key, value in options.items():
        problem = _option_problem(key, value)
        if problem:
            problems.append(f"{here}: '{key}' {problem}. Got {value!r} instead.")
    return options


def _option_problem(key: str, value) -> str | None:
    if key in ("units", "filters", "size") and not _positive_int(value):
        return "must be a positive int"
    if key == "kernel" and not (_positive_int(value) or (isinstance(value, list) and len(value) == 2 and all(map(_positive_int, value)))):
        return "must be a positive int or [height, width]"
    if key == "stride" and value is not None and not _positive_int(value):
        return "must be a positive int"
    if key == "padding" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return "must be an int >= 0"
    if key in ("activation", "function") and value not in ACTIVATIONS:
        return f"must be one of {list(ACTIVATIONS)}"
    if key == "rate" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1):
        return "must be a number in [0, 1)"
    if key == "momentum" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1):
        return "must be a number in [0, 1)"
    if key == "epsilon" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        return "must be a number > 0"
    if key == "use_bias" and not isinstance(value, bool):
        return "must be true or false"
    return None


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# --- shapes ----------------------------------------------------------------------------------

def _output_shape(layer: Layer, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    def fail(needs: str, fix: str = "") -> ConfigError:
        return ConfigError(where, [f"layer {layer.name!r} ({layer.type}) cannot follow its input: it needs {needs}, "
                                   f"but its input's shape is {shape}.{' ' + fix if fix else ''}"])

    if layer.type == "dense":
        if len(shape) != 1:
            raise fail("a flat input (features,)", "Add {type: flatten} before it.")
        return (layer["units"],)
    if layer.type == "flatten":
        return (int(np.prod(shape)),)
    if layer.type in ("dropout", "activation", "batchnorm"):
        return shape
    if len(shape) != 3:
        raise fail("an image input (channels, height, width)")
    if layer.type == "conv2d":
        kh, kw = _pair(layer["kernel"])
        height, width = _window(shape[1], kh, layer["stride"], layer["padding"]), _window(shape[2], kw, layer["stride"], layer["padding"])
        if height < 1 or width < 1:
            raise fail(f"an input of at least {kh}x{kw} pixels after padding {layer['padding']} (its {kh}x{kw} kernel)")
        return (layer["filters"], height, width)
    size, stride = layer["size"], layer["stride"] or layer["size"]
    if layer["padding"] * 2 > size:
        raise fail(f"padding at most half its window ({size}), as MXNet and PyTorch require")
    height, width = _window(shape[1], size, stride, layer["padding"]), _window(shape[2], size, stride, layer["padding"])
    if height < 1 or width < 1:
        raise fail(f"an input of at least {size}x{size} pixels (its window)")
    return (shape[0], height, width)


def _pair(kernel) -> tuple[int, int]:
    return (kernel, kernel) if isinstance(kernel, int) else (int(kernel[0]), int(kernel[1]))


def _window(size: int, kernel: int, stride: int | None, padding: int) -> int:
    return (size + 2 * padding - kernel) // (stride or 1) + 1


def _param_shapes(layer: Layer, before: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    if layer.type == "dense":
        shapes = {"weight": (layer["units"], before[0])}
        bias = (layer["units"],)
    elif layer.type == "conv2d":
        shapes = {"weight": (layer["filters"], before[0], *_pair(layer["kernel"]))}
        bias = (layer["filters"],)
    elif layer.type == "batchnorm":
        channels = (before[0],)
        return {"weight": channels, "bias": channels, "running_mean": channels, "running_var": channels}
    else:
        return {}
    if layer["use_bias"]:
        shapes["bias"] = bias
    return shapes


# --- initialisation --------------------------------------------------------------------------

def _draw(rng: np.random.Generator, layer: Layer, name: str, shape: tuple[int, ...], init: dict) -> np.ndarray:
    if layer.type == "batchnorm":
        value = 1.0 if name in ("weight", "running_var") else 0.0
        return np.full(shape, value, np.float32)
    if name == "bias":
        return np.zeros(shape, np.float32)
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    kind = init["kind"]
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "normal":
        values = rng.normal(init.get("mean", 0.0), init.get("std", 0.01), shape)
    elif kind == "uniform":
        values = rng.uniform(init.get("low", -0.07), init.get("high", 0.07), shape)
    elif kind == "xavier":
        limit = init.get("gain", 1.0) * math.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-limit, limit, shape)
    else:  # kaiming: He et al.'s normal for ReLU, fan-in mode
        values = rng.normal(0.0, init.get("gain", math.sqrt(2.0)) / math.sqrt(fan_in), shape)
    return values.astype(np.float32)
