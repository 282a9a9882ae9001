"""Training: the launcher (ps-lite roles, torch rendezvous) on Spark or locally, engines, parameter store.

    >>> from h3spark import train
    >>> train.distributed(train_fn, num_workers=2, num_servers=1, kvstore="dist_sync")
"""

from h3spark.train._api import KVSTORES, distributed, launch
from h3spark.train._checkpoint import latest_checkpoint
from h3spark.train._labels import check_labels
from h3spark.train._options import train_options, validation_context
from h3spark.train._run import train_from_config, worker_settings

__all__ = ["launch", "distributed", "train_from_config", "worker_settings", "latest_checkpoint", "check_labels", "KVSTORES",
           "train_options", "validation_context"]
