"""The parameter-store API: a Variable is a value plus the slots of its updater.

    >>> store = LocalParameterStore()
    >>> w = store.create("w", shape=(784, 10), updater=SGDUpdater(lr=0.1, momentum=0.9))   # or updater="adam"
    >>> w.init(np.zeros((784, 10), np.float32))
    >>> w.push(gradient); w.update()          # the updater applies every pushed gradient
    >>> w.pull()                              # the current value, as numpy
    >>> w.save("file:///tmp/w.npz", with_slots=True); w.checkpoint("file:///tmp/ckpt", step=100)
    >>> v = store.load("v", "file:///tmp/w.npz")   # a new variable from a saved file; w.load(uri) replaces w's
    >>> w.release()                           # the name can be created again

A Downpour-style loop (workers pull, compute gradients, push) is written against this
API only, so it runs on the local store (threads) and on the MXNet KVStore (processes).
Values live in the store (this process, or the KVStore's servers). A variable's updater
runs in the process that pushes, so its slots (momentum, Adam's moments, DC-ASGD's backup)
and its count of updates live there and ``save(with_slots=True)`` works on every store.
``init`` and ``load`` replace a value at any time; ``release`` frees the name. Saved files
are ``.npz`` (value, slots, updater kind, count of updates) read back with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import re
import threading
from abc import ABC, abstractmethod

import numpy as np

from h3spark.errors import StorageError, UsageError
from h3spark.storage import filesystem_for, join_uri
from h3spark.train._updaters import SGDUpdater, Updater, make_updater

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_CHECKPOINT = re.compile(r"^(?P<name>.+)-(?P<step>\d{8,})\.npz$")


class Variable:
    """A named tensor in a store; every call goes to the store that created it."""

    def __init__(self, store: ParameterStore, name: str, shape: tuple[int, ...], dtype: str, updater: Updater):
        self.store, self.name, self.shape, self.dtype, self.updater = store, name, tuple(shape), dtype, updater

    def init(self, value: np.ndarray | None = None, seed: int | None = None, scale: float = 0.01) -> Variable:
        """Set the value (``value``, else Gaussian noise from ``seed``), fresh slots and no updates."""
        if value is None:
            value = np.random.default_rng(seed).normal(0, scale, self.shape)
        value = self._checked(value, "value")
        self.store._restore(self, value, self.updater.initial_slots(value), 0)
        return self

    def pull(self) -> np.ndarray:
        """The current value (a copy)."""
        return self.store._pull(self)

    def push(self, grad: np.ndarray) -> None:
        """Add a gradient; it changes the value at the next ``update()``."""
        self.store._push(self, self._checked(grad, "grad"))

    def update(self) -> None:
        """Apply the updater to the value and slots with the gradients pushed since the last update."""
        self.store._update(self)

    def slots(self) -> dict[str, np.ndarray]:
        return self.store._state(self)[1]

    @property
    def updates(self) -> int:
        """How many updates changed the value since ``init`` (restored by ``load`` with slots)."""
        return self.store._state(self)[2]

    def save(self, uri: str, with_slots: bool = True) -> str:
        """Write the value (and the slots and count of updates) to ``uri`` as ``.npz``."""
        value, slots, updates = self.store._state(self)
        arrays = {"value": value}
        if with_slots:
            arrays.update({f"slot.{name}": array for name, array in slots.items()})
            arrays.update(updater=np.array(self.updater.kind), updates=np.array(updates, np.int64))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        filesystem_for(uri).write_bytes(uri, buffer.getvalue())
        return uri

    def load(self, uri: str) -> Variable:
        """Replace value (and slots, when the file has them) with a file written by ``save``."""
        self.store._load_into(self, read_saved(uri), uri)
        return self

    def checkpoint(self, root: str, step: int) -> str:
        """``save`` with slots to ``ROOT/NAME-STEP.npz`` (8 digits), written under a temporary name first."""
        target = join_uri(root, f"{self.name}-{step:08d}.npz")
        partial = self.save(join_uri(root, f".{self.name}-{step:08d}.npz.partial"), with_slots=True)
        filesystem = filesystem_for(target)
        filesystem.delete(target)
        filesystem.rename(partial, target)
        return target

    def restore(self, root: str, step: int | None = None) -> int:
        """Load the checkpoint of ``step`` (default: the latest) under ``root``; returns its step."""
        steps = checkpoint_steps(root, self.name)
        if not steps or (step is not None and step not in steps):
            wanted = "any step" if step is None else f"step {step}"
            raise StorageError(f"no checkpoint of variable {self.name!r} for {wanted} under {root} "
                               f"(it has steps {steps}); write one with variable.checkpoint(root, step).")
        step = steps[-1] if step is None else step
        self.load(join_uri(root, f"{self.name}-{step:08d}.npz"))
        return step

    def release(self) -> None:
        """Free the name (``create`` may use it again); this handle then refuses every call."""
        self.store._release(self)

    def _checked(self, array, what: str) -> np.ndarray:
        array = np.asarray(array, dtype=self.dtype)
        if array.shape != self.shape:
            raise UsageError(f"The {what} of variable {self.name!r} in {self.store.where} must have shape {self.shape}. "
                             f"Got {array.shape} instead; reshape it, or create a variable of that shape.")
        return array


def read_saved(uri: str) -> dict[str, np.ndarray]:
    """The arrays of a file ``Variable.save`` wrote (no pickle); anything else is a StorageError."""
    try:
        with np.load(io.BytesIO(filesystem_for(uri).read_bytes(uri)), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError) as error:  # not an npz, or an object array (allow_pickle=False)
        raise StorageError(f"{uri} is not a variable saved by h3spark (an .npz with a 'value'): {error}") from None
    if "value" not in arrays:
        raise StorageError(f"{uri} holds no 'value' array (it has {sorted(arrays)}); it was not written by Variable.save.")
    return arrays


def checkpoint_steps(root: str, name: str) -> list[int]:
    """The steps of variable ``name``'s checkpoints under ``root``, ascending."""
    filesystem = filesystem_for(root)
    if not filesystem.isdir(root):
        return []
    found = (_CHECKPOINT.match(entry) for entry in filesystem.listdir(root))
    return sorted(int(match["step"]) for match in found if match and match["name"] == name)


class ParameterStore(ABC):
    """Base class: ``create`` variables; the slots, counts and pushed gradients live here, with
    the process that pushes, and subclasses hold the values (``_write``, ``_read``, ``_add``)."""

    def __init__(self, updater: Updater | str | None = None):
        self.default_updater = make_updater(updater or SGDUpdater(), where=f"the default of {self.where}")
        self._variables: dict[str, Variable] = {}
        self._lock = threading.RLock()
        self._slot_values: dict[str, dict[str, np.ndarray]] = {}
        self._updates: dict[str, int] = {}
        self._pending: dict[str, np.ndarray] = {}

    @property
    def where(self) -> str:
        """This store, in words, for messages."""
        return f"this store ({type(self).__name__})"

    def create(self, name: str, shape: tuple[int, ...], updater: Updater | str | None = None,
               dtype: str = "float32") -> Variable:
        """A new variable (``updater``: an object or a name; the store's by default); it has no
        value until ``init`` or ``load``."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise UsageError(f"variable name {name!r} in {self.where} must be letters, digits, '_', '.' or '-' "
                             "(not starting with '.' or '-'); rename it.")
        with self._lock:
            if name in self._variables:
                raise UsageError(f"variable {name!r} already exists in {self.where}; release it first "
                                 "(store.variable(name).release()) or use another name.")
            updater = make_updater(self.default_updater if updater is None else updater, where=f"variable {name!r}")
            variable = Variable(self, name, tuple(int(size) for size in shape), dtype, updater)
            self._variables[name] = variable
        return variable

    def load(self, name: str, uri: str, updater: Updater | str | None = None) -> Variable:
        """A new variable ``name`` with the shape, value (and slots) of the file at ``uri``."""
        arrays = read_saved(uri)
        variable = self.create(name, arrays["value"].shape, updater, dtype=str(arrays["value"].dtype))
        try:
            self._load_into(variable, arrays, uri)
        except BaseException:
            variable.release()
            raise
        return variable

    def variable(self, name: str) -> Variable:
        if name not in self._variables:
            raise UsageError(f"no variable {name!r} in {self.where}; it has {sorted(self._variables)}. "
                             "Create it with store.create(name, shape).")
        return self._variables[name]

    def names(self) -> list[str]:
        return sorted(self._variables)

    def checkpoint(self, root: str, step: int) -> list[str]:
        """``Variable.checkpoint`` of every variable that has a value."""
        return [variable.checkpoint(root, step) for name, variable in sorted(self._variables.items())
                if name in self._slot_values]

    # --- what variables call ---------------------------------------------------------------

    def _load_into(self, variable: Variable, arrays: dict[str, np.ndarray], uri: str) -> None:
        value = arrays["value"]
        if tuple(value.shape) != variable.shape:
            raise StorageError(f"{uri} holds a value of shape {tuple(value.shape)}, but variable {variable.name!r} "
                               f"has shape {variable.shape}; load it into a variable of that shape (store.load(name, uri)).")
        value = value.astype(variable.dtype)
        saved = {key[len("slot."):]: array for key, array in arrays.items() if key.startswith("slot.")}
        if "updater" not in arrays and not saved:  # saved with with_slots=False
            self._restore(variable, value, variable.updater.initial_slots(value), 0)
            return
        kind = str(arrays["updater"]) if "updater" in arrays else "unknown"
        if set(saved) != set(variable.updater.slot_names) or kind not in (variable.updater.kind, "unknown"):
            raise StorageError(f"{uri} holds the slots {sorted(saved)} of updater {kind!r}, which do not match its updater's "
                               f"{sorted(variable.updater.slot_names)} (variable {variable.name!r} uses "
                               f"{variable.updater.kind!r}); create the variable with the saver's updater, "
                               "or save with with_slots=False.")
        slots = {name: np.array(array, dtype=variable.dtype) for name, array in saved.items()}
        self._restore(variable, value, slots, int(arrays.get("updates", 0)))

    def _restore(self, variable, value, slots, updates: int) -> None:
        with self._lock:
            self._require(variable, has_value=False)
            self._write(variable, value)
            self._slot_values[variable.name] = slots
            self._updates[variable.name] = updates
            self._pending.pop(variable.name, None)

    def _require(self, variable, has_value: bool = True) -> None:
        if self._variables.get(variable.name) is not variable:
            raise UsageError(f"variable {variable.name!r} was released from {self.where}; create it again "
                             f"(store.create({variable.name!r}, shape)) and use the new handle.")
        if has_value and variable.name not in self._slot_values:
            raise UsageError(f"variable {variable.name!r} in {self.where} has no value yet; call init() or load() first.")

    def _pull(self, variable) -> np.ndarray:
        with self._lock:
            self._require(variable)
            value = self._read(variable)
            variable.updater.on_pull(value, self._slot_values[variable.name])
            return value

    def _push(self, variable, grad) -> None:
        with self._lock:
            self._require(variable)
            pending = self._pending.get(variable.name)
            self._pending[variable.name] = grad.copy() if pending is None else pending + grad

    def _update(self, variable) -> None:
        with self._lock:
            self._require(variable)
            grad = self._pending.pop(variable.name, None)
            if grad is None:
                return
            count = self._updates[variable.name] + 1
            value = self._read(variable) if variable.updater.reads_value else None
            self._add(variable, variable.updater.delta(grad, self._slot_values[variable.name], count, value))
            self._updates[variable.name] = count

    def _state(self, variable) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
        """The value, a copy of the slots and the count of updates, read together."""
        with self._lock:
            self._require(variable)
            slots = {name: array.copy() for name, array in self._slot_values[variable.name].items()}
            return self._read(variable), slots, self._updates[variable.name]

    def _release(self, variable) -> None:
        with self._lock:
            if self._variables.get(variable.name) is not variable:
                return
            for held in (self._slot_values, self._updates, self._pending):
                held.pop(variable.name, None)
            self._forget(variable)
            del self._variables[variable.name]

    @abstractmethod
    def _write(self, variable, value: np.ndarray) -> None:
        """Set (or replace) the variable's value."""

    @abstractmethod
    def _read(self, variable) -> np.ndarray:
        """A copy of the variable's current value."""

    @abstractmethod
    def _add(self, variable, delta: np.ndarray) -> None:
        """Add the updater's ``delta`` to the variable's value."""

    @abstractmethod
    def _forget(self, variable) -> None:
        """Free what holds the variable's value; its name may be created again."""


class LocalParameterStore(ParameterStore):
    """Values and slots in this process; thread-safe, so threads can run Downpour workers
    (they then share each variable's slots: DC-ASGD's backup is the last value any thread pulled)."""

    def __init__(self, updater: Updater | str | None = None):
        super().__init__(updater)
        self._values: dict[str, np.ndarray] = {}

    def _write(self, variable, value) -> None:
        self._values[variable.name] = np.array(value, copy=True)

    def _read(self, variable) -> np.ndarray:
        return self._values[variable.name].copy()

    def _add(self, variable, delta) -> None:
        self._values[variable.name] += delta

    def _forget(self, variable) -> None:
        self._values.pop(variable.name, None)
