"""The parameter-store API (public names): Variable, the stores, the updaters.

The MXNet KVStore implementation is ``h3spark.train.engines.mxnet_store.KVStoreParameterStore``
(it imports mxnet, so it is not imported here).
"""

from h3spark.train._store import LocalParameterStore, ParameterStore, Variable, checkpoint_steps, read_saved
from h3spark.train._updaters import (
    UPDATERS,
    AdamUpdater,
    DCASGDUpdater,
    SGDUpdater,
    Updater,
    make_updater,
    updater_from_options,
)

__all__ = ["Variable", "ParameterStore", "LocalParameterStore", "Updater", "SGDUpdater", "AdamUpdater", "DCASGDUpdater",
           "UPDATERS", "make_updater", "updater_from_options", "read_saved", "checkpoint_steps"]
