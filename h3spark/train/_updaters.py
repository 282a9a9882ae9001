"""The updaters of the parameter store: how pushed gradients change a variable, and their slots.

    >>> make_updater("adam", lr=0.001).slot_names
    ('mean', 'var')
    >>> updater_from_options(TrainOptions(optimizer="sgd", lr=0.1, momentum=0.9))
    SGDUpdater(lr=0.1, momentum=0.9)

An updater turns the gradient of one ``update()`` into the change of the value (``delta``),
updating its slots in place; the store adds the change where the value lives. Its slots are
saved with the value: SGD's ``momentum`` (when momentum > 0), Adam's ``mean`` and ``var``
(with the count of updates, kept by the store, for the bias correction) and DC-ASGD's
``backup``: the value this store last handed out (by ``pull``, ``init`` or ``load``), i.e.
the weight the pushed gradient was computed at (Zheng et al. 2017). The formulas are
MXNet's (``mx.optimizer.SGD``, ``Adam``, ``DCASGD``), so a store and the MXNet engine agree.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from h3spark.errors import UsageError

if TYPE_CHECKING:
    from h3spark.train.engines.model import TrainOptions


class Updater(ABC):
    """Base class. ``kind`` names it in saved files; ``reads_value`` says whether ``delta``
    needs the current value (a KVStore then pulls it before each update)."""

    kind: ClassVar[str] = ""
    reads_value: ClassVar[bool] = False

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ()

    def initial_slots(self, value: np.ndarray) -> dict[str, np.ndarray]:
        """The slots of a fresh value (``init``, or ``load`` of a file saved without slots)."""
        return {name: np.zeros_like(value) for name in self.slot_names}

    def on_pull(self, value: np.ndarray, slots: dict[str, np.ndarray]) -> None:
        """Called with every value the store hands out."""

    @abstractmethod
    def delta(self, grad: np.ndarray, slots: dict[str, np.ndarray], count: int, value: np.ndarray | None) -> np.ndarray:
        """The change to add to the value for ``grad``, at update number ``count`` (1-based)."""

    def _check(self, **bounds: tuple[float, float, bool]) -> None:
        for key, (low, high, low_inclusive) in bounds.items():
            value = getattr(self, key)
            if not isinstance(value, numbers.Real) or not (low <= value if low_inclusive else low < value) or not value < high:
                interval = f"{'[' if low_inclusive else '('}{low}, {'inf' if high == float('inf') else high})"
                raise UsageError(f"The '{key}' parameter of {type(self).__name__} must be a number in the range "
                                 f"{interval}. Got {value!r} instead.")


INF = float("inf")


@dataclass(frozen=True)
class SGDUpdater(Updater):
    """SGD, with a ``momentum`` slot when momentum > 0: mom = momentum * mom - lr * grad; value += mom."""

    lr: float = 0.1
    momentum: float = 0.0
    kind: ClassVar[str] = "sgd"

    def __post_init__(self):
        self._check(lr=(0.0, INF, False), momentum=(0.0, 1.0, True))

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum else ()

    def delta(self, grad, slots, count, value=None):
        if not self.momentum:
            return -self.lr * grad
        slots["momentum"] *= self.momentum
        slots["momentum"] -= self.lr * grad
        return slots["momentum"].copy()


@dataclass(frozen=True)
class AdamUpdater(Updater):
    """Adam with bias correction (MXNet's): slots ``mean`` and ``var``."""

    lr: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    kind: ClassVar[str] = "adam"

    def __post_init__(self):
        self._check(lr=(0.0, INF, False), beta1=(0.0, 1.0, True), beta2=(0.0, 1.0, True), epsilon=(0.0, INF, False))

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("mean", "var")

    def delta(self, grad, slots, count, value=None):
        mean, var = slots["mean"], slots["var"]
        mean *= self.beta1
        mean += (1 - self.beta1) * grad
        var *= self.beta2
        var += (1 - self.beta2) * np.square(grad)
        rate = self.lr * np.sqrt(1 - self.beta2 ** count) / (1 - self.beta1 ** count)
        return (-rate * mean / (np.sqrt(var) + self.epsilon)).astype(grad.dtype)


@dataclass(frozen=True)
class DCASGDUpdater(Updater):
    """DC-ASGD: step = -lr * (grad + lamda * grad² * (value - backup)), with an optional momentum slot."""

    lr: float = 0.1
    lamda: float = 0.04
    momentum: float = 0.0
    kind: ClassVar[str] = "dcasgd"
    reads_value: ClassVar[bool] = True

    def __post_init__(self):
        self._check(lr=(0.0, INF, False), lamda=(0.0, INF, True), momentum=(0.0, 1.0, True))

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("backup", "momentum") if self.momentum else ("backup",)

    def initial_slots(self, value):
        slots = super().initial_slots(value)
        slots["backup"] = np.array(value, copy=True)
        return slots

    def on_pull(self, value, slots):
        slots["backup"][...] = value

    def delta(self, grad, slots, count, value=None):
        step = -self.lr * (grad + self.lamda * np.square(grad) * (value - slots["backup"]))
        if not self.momentum:
            return step.astype(grad.dtype)
        slots["momentum"] *= self.momentum
        slots["momentum"] += step
        return slots["momentum"].copy()


UPDATERS: dict[str, type[Updater]] = {cls.kind: cls for cls in (SGDUpdater, AdamUpdater, DCASGDUpdater)}


def make_updater(updater: Updater | str, where: str = "the parameter store", **params) -> Updater:
    """An updater object as is, or one by name (``sgd``, ``adam``, ``dcasgd``) with ``params``."""
    if isinstance(updater, Updater):
        return updater
    cls = UPDATERS.get(updater) if isinstance(updater, str) else None
    if cls is None:
        raise UsageError(f"unknown updater {updater!r} for {where}; use one of {', '.join(map(repr, UPDATERS))} "
                         f"(by name, e.g. updater='adam') or an updater object such as SGDUpdater(lr=0.1, momentum=0.9).")
    accepted = [field.name for field in fields(cls)]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UsageError(f"updater {updater!r} for {where} takes {', '.join(accepted)}. Got {', '.join(unknown)} instead.")
    return cls(**params)


def updater_from_options(options: TrainOptions) -> Updater:
    """The store updater of a model's training options (optimizer, lr, momentum, betas, dcasgd_lambda).

    Options that the store's updaters do not apply (weight decay, clipping, warm-up, a schedule)
    are refused rather than ignored."""
    ignored = {"weight_decay": 0.0, "clip_norm": 0.0, "warmup_steps": 0, "schedule": "constant"}
    set_ = [f"{key}={getattr(options, key)!r}" for key, default in ignored.items() if getattr(options, key) != default]
    if set_:
        raise UsageError(f"the parameter store's updaters do not apply {', '.join(set_)}; set them to their defaults "
                         f"({', '.join(f'{key}={value!r}' for key, value in ignored.items())}) for a store-trained model.")
    if options.optimizer == "adam":
        return AdamUpdater(lr=options.lr, beta1=options.beta1, beta2=options.beta2, epsilon=options.epsilon)
    if options.optimizer == "dcasgd":
        return DCASGDUpdater(lr=options.lr, lamda=options.dcasgd_lambda, momentum=options.momentum)
    return make_updater(options.optimizer, where="the training options", lr=options.lr, momentum=options.momentum)
