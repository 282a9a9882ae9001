"""The parameter-store API: a Variable is a value plus the slots of its updater.

    >>> store = LocalParameterStore()
    >>> w = store.create("w", shape=(784, 10), updater=SGDUpdater(lr=0.1, momentum=0.9))
    >>> w.init(np.zeros((784, 10), np.float32))
    >>> w.push(gradient); w.update()          # the updater applies every pushed gradient
    >>> w.pull()                              # the current value, as numpy
    >>> w.save("file:///tmp/w.npz", with_slots=True); w.checkpoint("file:///tmp/ckpt", step=100)

A Downpour-style loop (workers pull, compute gradients, push) is written against this
API only, so it runs on the local store (threads) and on the MXNet KVStore (processes).
Values live in the store (this process, or the KVStore's servers). A variable's updater
runs in the process that pushes, so its slots (momentum) live there and ``save(with_slots=True)``
works on every store. ``init`` and ``load`` replace a value at any time; ``release`` frees
the name. Saved files are ``.npz`` read back with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from h3spark.errors import StorageError, UsageError
from h3spark.storage import filesystem_for, join_uri


@dataclass(frozen=True)
class SGDUpdater:
    """SGD, with a ``momentum`` slot when momentum > 0."""

    lr: float = 0.1
    momentum: float = 0.0

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum else ()

    def apply(self, value: np.ndarray, grad: np.ndarray, slots: dict[str, np.ndarray]) -> None:
        if self.momentum:
            slots["momentum"] *= self.momentum
            slots["momentum"] -= self.lr * grad
            value += slots["momentum"]
        else:
            value -= self.lr * grad


class Variable:
    """A named tensor in a store; every call goes to the store that created it."""

    def __init__(self, store: "ParameterStore", name: str, shape: tuple[int, ...], dtype: str, updater: SGDUpdater):
        self.store, self.name, self.shape, self.dtype, self.updater = store, name, tuple(shape), dtype, updater

    def init(self, value: np.ndarray | None = None, seed: int | None = None, scale: float = 0.01) -> "Variable":
        """Set the value (``value``, else Gaussian noise from ``seed``) and zero the slots."""
        if value is None:
            value = np.random.default_rng(seed).normal(0, scale, self.shape)
        self.store._init(self, self._checked(value, "value"))
        return self

    def pull(self) -> np.ndarray:
        return self.store._pull(self)

    def push(self, grad: np.ndarray) -> None:
        """Add a gradient; it changes the value at the next ``update()``."""
        self.store._push(self, self._checked(grad, "grad"))

    def update(self) -> None:
        """Apply the updater to the value and slots with the gradients pushed since the last update."""
        self.store._update(self)

    def slots(self) -> dict[str, np.ndarray]:
        return self.store._slots(self)

    def save(self, uri: str, with_slots: bool = True) -> str:
        arrays = {"value": self.pull()}
        if with_slots:
            arrays.update({f"slot.{name}": array for name, array in self.slots().items()})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        filesystem_for(uri).write_bytes(uri, buffer.getvalue())
        return uri

    def load(self, uri: str) -> "Variable":
        """Set value (and slots, when the file has them) from a file written by ``save``."""
        with np.load(io.BytesIO(filesystem_for(uri).read_bytes(uri)), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        self.init(arrays["value"])
        slots = {key[len("slot."):]: value for key, value in arrays.items() if key.startswith("slot.")}
        if slots:
            self.store._set_slots(self, slots)
        return self

    def checkpoint(self, root: str, step: int) -> str:
        return self.save(join_uri(root, f"{self.name}-{step:08d}.npz"), with_slots=True)

    def release(self) -> None:
        self.store._release(self)

    def _checked(self, array, what: str) -> np.ndarray:
        array = np.asarray(array, dtype=self.dtype)
        if array.shape != self.shape:
            raise UsageError(f"The {what} of variable {self.name!r} must have shape {self.shape}. Got {array.shape} instead.")
        return array


class ParameterStore(ABC):
    """Base class: ``create`` variables; the slots and pushed gradients live here, with the
    process that pushes, and subclasses hold the values (``_write``, ``_read``, ``_apply``)."""

    def __init__(self, updater: SGDUpdater | None = None):
        self.default_updater = updater or SGDUpdater()
        self._variables: dict[str, Variable] = {}
        self._lock = threading.RLock()
        self._slot_values: dict[str, dict[str, np.ndarray]] = {}
        self._pending: dict[str, np.ndarray] = {}

    def create(self, name: str, shape: tuple[int, ...], updater: SGDUpdater | None = None, dtype: str = "float32") -> Variable:
        """A new variable (``updater`` defaults to the store's); it has no value until ``init`` or ``load``."""
        if name in self._variables:
            raise UsageError(f"variable {name!r} already exists in this store; release it first or use another name.")
        variable = Variable(self, name, shape, dtype, updater or self.default_updater)
        self._variables[name] = variable
        return variable

    def variable(self, name: str) -> Variable:
        if name not in self._variables:
            raise UsageError(f"no variable {name!r} in this store; it has {sorted(self._variables)}.")
        return self._variables[name]

    def _init(self, variable, value) -> None:
        with self._lock:
            self._write(variable, value)
            self._slot_values[variable.name] = {name: np.zeros_like(value) for name in variable.updater.slot_names}
            self._pending.pop(variable.name, None)

    def _require(self, variable) -> None:
        if self._variables.get(variable.name) is not variable:
            raise UsageError(f"variable {variable.name!r} was released from this store; create it again.")
        if variable.name not in self._slot_values:
            raise UsageError(f"variable {variable.name!r} has no value yet; call init() or load() first.")

    def _pull(self, variable) -> np.ndarray:
        with self._lock:
            self._require(variable)
            return self._read(variable)

    def _push(self, variable, grad) -> None:
        with self._lock:
            self._require(variable)
            self._pending[variable.name] = self._pending.get(variable.name, 0) + grad

    def _update(self, variable) -> None:
        with self._lock:
            self._require(variable)
            grad = self._pending.pop(variable.name, None)
            if grad is not None:
                self._apply(variable, grad, self._slot_values[variable.name])

    def _slots(self, variable) -> dict[str, np.ndarray]:
        with self._lock:
            self._require(variable)
            return {name: array.copy() for name, array in self._slot_values[variable.name].items()}

    def _set_slots(self, variable, slots) -> None:
        with self._lock:
            expected = set(variable.updater.slot_names)
            if set(slots) != expected:
                raise StorageError(f"the saved slots {sorted(slots)} of {variable.name!r} do not match its updater's {sorted(expected)}.")
            self._slot_values[variable.name] = {name: np.asarray(array, variable.dtype).copy() for name, array in slots.items()}

    def _release(self, variable) -> None:
        with self._lock:
            if self._variables.get(variable.name) is not variable:
                return
            self._slot_values.pop(variable.name, None)
            self._pending.pop(variable.name, None)
            self._forget(variable)
            del self._variables[variable.name]

    @abstractmethod
    def _write(self, variable, value: np.ndarray) -> None:
        """Set (or replace) the variable's value."""

    @abstractmethod
    def _read(self, variable) -> np.ndarray:
        """A copy of the variable's current value."""

    @abstractmethod
    def _apply(self, variable, grad: np.ndarray, slots: dict[str, np.ndarray]) -> None:
        """Apply the variable's updater with ``grad`` (``slots`` are updated in place)."""

    @abstractmethod
    def _forget(self, variable) -> None:
        """Free what holds the variable's value; its name may be created again."""


class LocalParameterStore(ParameterStore):
    """Values and slots in this process; thread-safe, so threads can run Downpour workers."""

    def __init__(self, updater: SGDUpdater | None = None):
        super().__init__(updater)
        self._values: dict[str, np.ndarray] = {}

    def _write(self, variable, value) -> None:
        self._values[variable.name] = value.copy()

    def _read(self, variable) -> np.ndarray:
        return self._values[variable.name].copy()

    def _apply(self, variable, grad, slots) -> None:
        variable.updater.apply(self._values[variable.name], grad, slots)

    def _forget(self, variable) -> None:
        self._values.pop(variable.name, None)
