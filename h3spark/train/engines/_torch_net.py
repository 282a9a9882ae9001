"""The torch network of a model spec, and DC-ASGD for torch (imported by ``torch_model`` only
when a TorchModel is built, so importing h3spark never imports torch).

Each spec layer is one child of an ``nn.Sequential`` named by the layer's name, so the
state_dict keys are the spec's weight names (``conv1.weight``, ``bn0.running_var``) plus
batchnorm's ``num_batches_tracked``, which the model leaves out. A dense or conv2d layer
applies its activation itself (no extra child, so names never clash).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional

from h3spark.train.engines.spec import ModelSpec

ACTIVATION_FUNCTIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
                        "softrelu": functional.softplus, "linear": None}


class Dense(nn.Linear):
    """``nn.Linear`` followed by the spec's activation."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear", device=None):
        super().__init__(in_features, out_features, bias=bias, device=device)
        self.activation = ACTIVATION_FUNCTIONS[activation]

    def forward(self, x):
        out = super().forward(x)
        return out if self.activation is None else self.activation(out)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by the spec's activation."""

    def __init__(self, channels: int, filters: int, kernel, stride: int = 1, padding: int = 0, bias: bool = True,
                 activation: str = "linear", device=None):
        super().__init__(channels, filters, kernel, stride=stride, padding=padding, bias=bias, device=device)
        self.activation = ACTIVATION_FUNCTIONS[activation]

    def forward(self, x):
        out = super().forward(x)
        return out if self.activation is None else self.activation(out)


class Activation(nn.Module):
    """The spec's ``activation`` layer."""

    def __init__(self, function: str):
        super().__init__()
        self.function = ACTIVATION_FUNCTIONS[function]

    def forward(self, x):
        return x if self.function is None else self.function(x)


class Dropout(nn.Module):
    """Inverted dropout whose masks come from the model's own generator (not torch's global
    RNG), so a model's training is reproducible from its seed whatever else the process draws."""

    def __init__(self, rate: float, generator: torch.Generator):
        super().__init__()
        self.rate, self.generator = float(rate), generator

    def forward(self, x):
        if not self.training or self.rate == 0:
            return x
        # the mask scaled in place: one multiplication forward and one backward, as torch's own dropout
        keep = torch.empty_like(x).bernoulli_(1 - self.rate, generator=self.generator).div_(1 - self.rate)
        return x * keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


def build_network(spec: ModelSpec, device, generator: torch.Generator) -> nn.Sequential:
    """The spec's layers as an ``nn.Sequential`` on ``device``; parametric layers are created
    without initialising (their weights are loaded from ``spec.initial_weights`` afterwards)."""
    children = OrderedDict()
    for layer, before, _ in spec.shapes():
        children[layer.name] = _module(layer, before, device, generator)
    return nn.Sequential(children)


def _module(layer, before: tuple[int, ...], device, generator) -> nn.Module:
    skip_init = nn.utils.skip_init
    if layer.type == "dense":
        return skip_init(Dense, before[0], layer["units"], bias=layer["use_bias"], activation=layer["activation"], device=device)
    if layer.type == "conv2d":
        return skip_init(Conv2d, before[0], layer["filters"], layer["kernel"], stride=layer["stride"], padding=layer["padding"],
                         bias=layer["use_bias"], activation=layer["activation"], device=device)
    if layer.type == "batchnorm":
        kind = nn.BatchNorm2d if len(before) == 3 else nn.BatchNorm1d
        # the spec keeps MXNet's convention (momentum 0.9 keeps 90% of the running value); torch's is the new value's share
        norm = skip_init(kind, before[0], eps=layer["epsilon"], momentum=1.0 - layer["momentum"], device=device)
        norm.num_batches_tracked.zero_()  # unused with a fixed momentum, but never left uninitialised
        return norm
    if layer.type in ("maxpool", "avgpool"):
        kind = nn.MaxPool2d if layer.type == "maxpool" else nn.AvgPool2d
        return kind(layer["size"], stride=layer["stride"] or layer["size"], padding=layer["padding"], ceil_mode=False)
    if layer.type == "flatten":
        return nn.Flatten()
    if layer.type == "dropout":
        return Dropout(layer["rate"], generator)
    return Activation(layer["function"])


class DCASGD(torch.optim.Optimizer):
    """Delay-compensated SGD (Zheng et al. 2017), as MXNet's ``DCASGD`` computes it:

        step = -lr * (g + wd * w + lamda * g * g * (w - backup));  backup <- w
        momentum > 0:  mom <- momentum * mom + step;  w <- w + mom     (else w <- w + step)

    ``backup`` starts as the weight at the first step. A parameter without a gradient (a
    frozen layer) is skipped, its backup and momentum untouched."""

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.0, weight_decay: float = 0.0, lamda: float = 0.04):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "lamda": lamda})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for weight in group["params"]:
                if weight.grad is not None:
                    self._update(weight, group)
        return loss

    def _update(self, weight, group) -> None:
        grad, state = weight.grad, self.state[weight]
        if not state:
            state["backup"] = weight.detach().clone()
            if group["momentum"] > 0:
                state["momentum"] = torch.zeros_like(weight)
        backup = state["backup"]
        step = grad + group["weight_decay"] * weight + group["lamda"] * grad * grad * (weight - backup)
        step.mul_(-group["lr"])
        if "momentum" in state:
            state["momentum"].mul_(group["momentum"]).add_(step)
            step = state["momentum"]
        backup.copy_(weight)
        weight.add_(step)


def make_optimizer(options, params) -> torch.optim.Optimizer:
    """The optimizer ``options`` (a TrainOptions) names, over ``params``. Weight decay is L2
    coupled to the gradient (added before momentum or Adam's moments), as MXNet's ``wd``.
    SGD and Adam update all their tensors with one ``_foreach`` call per operation on every
    device (torch picks that on CUDA only): on CPU it saves ~30 % of Adam's step for a small CNN."""
    if options.optimizer == "adam":
        return torch.optim.Adam(params, lr=options.lr, betas=(options.beta1, options.beta2), eps=options.epsilon,
                                weight_decay=options.weight_decay, foreach=True)
    if options.optimizer == "dcasgd":
        return DCASGD(params, lr=options.lr, momentum=options.momentum, weight_decay=options.weight_decay,
                      lamda=options.dcasgd_lambda)
    return torch.optim.SGD(params, lr=options.lr, momentum=options.momentum, weight_decay=options.weight_decay, foreach=True)
