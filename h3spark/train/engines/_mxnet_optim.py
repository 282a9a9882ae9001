"""Optimizers for the MXNet engine, including a working DCASGD.

MXNet 1.9.1's ``DCASGD.update`` tests its momentum state with ``if mom:``. With
momentum > 0 that state is an NDArray, whose truth value raises ("The truth value of
an NDArray with multiple elements is ambiguous") for any weight of more than one
element, so DCASGD with momentum cannot run at all. ``DCASGD`` here is the same
algorithm (Zheng et al., 2017) with the test done right; ``make_optimizer("dcasgd")``
uses it. It is a module-level class, so servers can unpickle it after
``kv.set_optimizer`` (servers import h3spark from the same environment).

``optimizer_from_options(TrainOptions)`` builds the optimizer a model's training options
name (sgd with momentum, adam, dcasgd; L2 weight decay); ``ScheduledRate`` carries their
rate schedule inside the optimizer, for optimizers that run on KVStore servers.
"""

from __future__ import annotations

from typing import Any

import mxnet as mx
from mxnet import lr_scheduler as mx_lr_scheduler  # not mx.lr_scheduler: a server unpickles this module
from mxnet import optimizer as mx_optimizer         # while `import mxnet` runs, before that attribute is set

from h3spark.errors import ConfigError
from h3spark.train.engines.model import TrainOptions, learning_rate


class DCASGD(mx_optimizer.DCASGD):
    """MXNet's DCASGD with a working ``momentum > 0`` (see the module docstring)."""

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        grad = grad * self.rescale_grad
        if self.clip_gradient is not None:
            grad = mx.nd.clip(grad, -self.clip_gradient, self.clip_gradient)
        mom, previous_weight = state
        step = -lr * (grad + wd * weight + self.lamda * grad * grad * (weight - previous_weight))
        if mom is not None:
            mom[:] *= self.momentum
            mom[:] += step
            step = mom
        previous_weight[:] = weight
        weight[:] += step


def make_optimizer(name: str, lr: float, momentum: float = 0.0, params: dict[str, Any] | None = None):
    """An MXNet optimizer by name; ``dcasgd`` is the fixed one. Unknown names are config errors."""
    params = dict(params or {})
    if momentum and name.lower() in ("sgd", "nag", "dcasgd", "signum"):
        params.setdefault("momentum", momentum)
    if name.lower() == "dcasgd":
        return DCASGD(learning_rate=lr, **params)
    try:
        return mx_optimizer.create(name.lower(), learning_rate=lr, **params)
    except (ValueError, TypeError) as error:
        known = ", ".join(sorted(mx_optimizer.Optimizer.opt_registry))
        raise ConfigError("training.optimizer", [f"cannot create optimizer {name!r} with {params}: {error}. Known optimizers: {known}."]) from None


class ScheduledRate(mx_lr_scheduler.LRScheduler):
    """The options' rate (warm-up, then the schedule) at the optimizer's own update count.

    Servers that run the optimizer (``update_on_kvstore``) never see a worker's step, so the
    schedule travels with the optimizer: update ``n`` (1-based, as MXNet counts) of an optimizer
    attached after ``first_step`` model steps uses ``learning_rate(options, first_step + n - 1)``.
    """

    def __init__(self, options: TrainOptions, first_step: int = 0):
        super().__init__(base_lr=options.lr)
        self.options, self.first_step = options, int(first_step)

    def __call__(self, num_update: int) -> float:
        return learning_rate(self.options, self.first_step + max(int(num_update) - 1, 0))


def optimizer_from_options(options: TrainOptions, scheduled: bool = False, first_step: int = 0):
    """The MXNet optimizer of ``options``: sgd (momentum), adam or dcasgd, with L2 ``weight_decay``.
    ``scheduled``: the rate follows :class:`ScheduledRate` (else the caller sets it each step)."""
    params: dict[str, Any] = {"wd": options.weight_decay}
    if options.optimizer == "adam":
        params.update(beta1=options.beta1, beta2=options.beta2, epsilon=options.epsilon)
    elif options.optimizer == "dcasgd":
        params["lamda"] = options.dcasgd_lambda
    momentum = options.momentum if options.optimizer != "adam" else 0.0
    optimizer = make_optimizer(options.optimizer, learning_rate(options, first_step), momentum, params)
    if scheduled:
        optimizer.lr_scheduler = ScheduledRate(options, first_step)
    return optimizer
