"""The parameter-store API (public names): Variable, LocalParameterStore, SGDUpdater.

The MXNet KVStore implementation is ``h3spark.train.engines.mxnet_store.KVStoreParameterStore``
(it imports mxnet, so it is not imported here).
"""

from h3spark.train._store import LocalParameterStore, ParameterStore, SGDUpdater, Variable

__all__ = ["Variable", "ParameterStore", "LocalParameterStore", "SGDUpdater"]
