"""The parameter-store API on MXNet's KVStore: values and slots live on the servers.

The variable's updater runs on the servers (``kv.set_optimizer``, which pickles the
optimizer over the job's own ps-lite network), so one updater serves every variable of
a store. Servers cannot hand their optimizer state back (MXNet refuses to save it), so
``save(with_slots=True)``, ``slots()`` and ``checkpoint()`` raise here: save the values
with ``save(with_slots=False)``, or keep the state worker-side (the MXNet engine's
``optimizer_on: workers``).
"""

from __future__ import annotations

import numpy as np

from h3spark.errors import StorageError, UsageError
from h3spark.train._store import ParameterStore, SGDUpdater
from h3spark.train.engines.mxnet_models import import_mxnet

mx = import_mxnet()  # mxnet's one install hint when it is missing


class KVStoreParameterStore(ParameterStore):
    """Variables as keys of an MXNet KVStore (``dist_async`` for Downpour SGD)."""

    def __init__(self, kvstore="dist_async", updater: SGDUpdater | None = None):
        super().__init__()
        self.kv = mx.kv.create(kvstore) if isinstance(kvstore, str) else kvstore
        self.updater = updater or SGDUpdater()
        self.kv.set_optimizer(mx.optimizer.SGD(learning_rate=self.updater.lr, momentum=self.updater.momentum,
                                               rescale_grad=1.0, wd=0.0))
        self._pending: dict[str, np.ndarray] = {}
        self._initialised: set[str] = set()

    @property
    def rank(self) -> int:
        return self.kv.rank

    @property
    def num_workers(self) -> int:
        return self.kv.num_workers

    def _created(self, variable) -> None:
        if variable.updater != self.updater:
            raise UsageError(f"a KVStore store has one updater ({self.updater}); variable {variable.name!r} asked for {variable.updater}.")

    def _init(self, variable, value) -> None:
        if variable.name in self._initialised:
            raise UsageError(f"variable {variable.name!r} is already initialised on the servers; a KVStore key is set once.")
        self.kv.init(variable.name, mx.nd.array(value, dtype=variable.dtype))  # worker 0's value wins
        self._initialised.add(variable.name)

    def _require(self, variable) -> None:
        if variable.name not in self._initialised:
            raise UsageError(f"variable {variable.name!r} has no value yet; call init() first.")

    def _pull(self, variable) -> np.ndarray:
        self._require(variable)
        out = mx.nd.zeros(variable.shape, dtype=variable.dtype)
        self.kv.pull(variable.name, out=out)
        return out.asnumpy()

    def _push(self, variable, grad) -> None:
        self._require(variable)
        self._pending[variable.name] = self._pending.get(variable.name, 0) + grad

    def _update(self, variable) -> None:
        grad = self._pending.pop(variable.name, None)
        if grad is not None:
            self.kv.push(variable.name, mx.nd.array(grad, dtype=variable.dtype))

    def _slots(self, variable) -> dict[str, np.ndarray]:
        if not variable.updater.slot_names:
            return {}
        raise StorageError(f"the slots {list(variable.updater.slot_names)} of {variable.name!r} live on the KVStore servers, "
                           "which cannot hand them back (MXNet does not save server-side optimizer state). "
                           "Use save(uri, with_slots=False), or keep the optimizer on the workers.")

    def _set_slots(self, variable, slots) -> None:
        raise StorageError(f"cannot load slots into the KVStore servers for {variable.name!r}; save and load it with_slots=False.")

    def _release(self, variable) -> None:
        self._pending.pop(variable.name, None)
        super()._release(variable)  # KVStore keys cannot be deleted; the name is no longer usable here
