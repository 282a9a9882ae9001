"""The parameter-store API on MXNet's KVStore: the values live on the servers.

``dist_async`` gives Downpour SGD, ``dist_sync`` sums every worker's step, and ``local`` is
the same API in one process (the contract tests run on it). Each variable's updater runs in
the worker that pushes: ``update()`` turns the pushed gradients into a step with the
variable's own slots (momentum, Adam's moments, DC-ASGD's backup) and pushes the step, which
the servers add to the value (their optimizer is plain SGD with learning rate 1, sent once by
``kv.set_optimizer``, which pickles it over the job's own ps-lite network; DC-ASGD pulls the
current value first). So the slots are the worker's own: with several workers each keeps the
momentum of the gradients it pushed, as Downpour's workers do, and ``save(with_slots=True)``
and ``checkpoint`` write them.

A KVStore key is initialised once and cannot be deleted, so ``init`` or ``load`` of a variable
that has a value, and a name created again after ``release``, use a fresh key (``w``, ``w#1``,
``w#2`` ...); the old key's value stays in the servers' memory until the job ends. As with
``kv.init``, in the dist modes every worker calls ``init``/``load`` in the same order, and
worker 0's value wins; with ``dist_sync`` every worker pushes at each ``update()``. Run dist
workers with ``MXNET_ENGINE_TYPE=NaiveEngine`` (``h3spark train`` does; pass it in
``distributed(..., env=...)``): under CPU load MXNet's threaded engine let a pull miss the
update just pushed (1 dist_sync run in 3 here), and the store logs a warning without it.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from h3spark.train._store import ParameterStore
from h3spark.train._updaters import Updater
from h3spark.train.engines.mxnet_models import import_mxnet

mx = import_mxnet()  # mxnet's one install hint when it is missing
logger = logging.getLogger(__name__)


class KVStoreParameterStore(ParameterStore):
    """Variables as keys of an MXNet KVStore (a type such as ``dist_async`` or a made one);
    ``updater`` (an object or a name) is the default of ``create``."""

    def __init__(self, kvstore="dist_async", updater: Updater | str | None = None):
        self.kv = mx.kv.create(kvstore) if isinstance(kvstore, str) else kvstore
        super().__init__(updater)
        if self.kv.type.startswith("dist") and os.environ.get("MXNET_ENGINE_TYPE") != "NaiveEngine":
            logger.warning("a %s parameter store under MXNet's threaded engine may pull stale values; set "
                           "MXNET_ENGINE_TYPE=NaiveEngine in the workers' environment. rank=%d", self.kv.type, self.kv.rank)
        # The servers add each pushed step to the value: weight - 1.0 * (-step).
        self.kv.set_optimizer(mx.optimizer.SGD(learning_rate=1.0, momentum=0.0, rescale_grad=1.0, wd=0.0))
        self._keys: dict[str, str] = {}
        self._generations: dict[str, int] = {}

    @property
    def where(self) -> str:
        return f"this store (KVStore {self.kv.type!r}, worker {self.kv.rank} of {self.kv.num_workers})"

    @property
    def rank(self) -> int:
        return self.kv.rank

    @property
    def num_workers(self) -> int:
        return self.kv.num_workers

    def key_of(self, name: str) -> str:
        """The KVStore key that holds variable ``name``'s current value."""
        self.variable(name)
        return self._keys[name]

    def _write(self, variable, value) -> None:
        generation = self._generations.get(variable.name, 0)
        key = variable.name if generation == 0 else f"{variable.name}#{generation}"
        self.kv.init(key, mx.nd.array(value, dtype=variable.dtype))
        self._generations[variable.name] = generation + 1
        self._keys[variable.name] = key

    def _read(self, variable) -> np.ndarray:
        out = mx.nd.zeros(variable.shape, dtype=variable.dtype)
        self.kv.pull(self._keys[variable.name], out=out)
        return out.asnumpy()

    def _add(self, variable, delta) -> None:
        self.kv.push(self._keys[variable.name], mx.nd.array(-delta, dtype=variable.dtype))

    def _forget(self, variable) -> None:
        self._keys.pop(variable.name, None)
