"""The MXNet engine: the model contract's :class:`MXNetModel` on a KVStore (dist_sync, dist_async,
local, device).

``train_worker(settings)`` runs in every worker process of a launch (see
``h3spark.train.distributed``). It builds the run's model from ``training.model`` (a spec, or
the ``mlp`` shorthand) and the training options (``h3spark.train.train_options``), attaches the
KVStore, and trains on its own even shard through ``h3spark.feed.DataIterator`` (equal batch
counts, so dist_sync never waits on a worker that ran out); rank 0 writes TensorBoard scalars
and checkpoints (``model.safetensors``, which ``load_model`` reads in any engine).

Where the optimizer state lives decides what a checkpoint can hold:
- ``optimizer_on: workers`` (dist_sync, local): servers only sum gradients and every
  worker applies the same optimizer to the same summed gradient, so all workers hold
  identical slots and rank 0 saves them. Resume restores weights, slots and counters.
- ``optimizer_on: servers`` (required by dist_async): the state lives on the servers,
  which MXNet cannot save; checkpoints then hold the weights only, and a resume starts
  the slots afresh (``checkpoint.json`` says ``"optimizer_state": false``).
"""

from __future__ import annotations

import time

from h3spark.train.engines import mxnet_models as models

mx = models.import_mxnet()  # mxnet's one install hint when it is missing

from h3spark.train._labels import check_training_labels  # noqa: E402
from h3spark.train._model import training_spec  # noqa: E402
from h3spark.train._options import train_options  # noqa: E402
from h3spark.train._progress import Progress  # noqa: E402
from h3spark.train.engines._mxnet_state import (  # noqa: E402
    bytes_to_ndarrays,
    ndarrays_to_bytes,
    optimizer_state,
    restore_optimizer_state,
)

OPTIMIZER_FILE = "optimizer.nd"
DROPOUT_SEED_STRIDE = 100003  # each worker's dropout masks: seed * stride + rank, as TorchModel.wrap_ddp


def train_worker(settings: dict) -> dict:
    """Train on this worker's shard; return a JSON summary (rank 0 adds the checkpoint URI)."""
    kv = mx.kv.create(settings["kvstore"])
    data = _open_shard(settings, kv.rank, kv.num_workers)
    check_training_labels(settings)
    model = models.MXNetModel(training_spec(settings, data.feature_shape), seed=settings["seed"],
                              options=train_options(settings))
    mx.random.seed(settings["seed"] * DROPOUT_SEED_STRIDE + kv.rank)
    progress = MXNetProgress(model, kv.rank, kv.num_workers, settings)
    resumed = progress.resume()  # before attaching: a server-side schedule starts at the model's step
    dist = settings["kvstore"].startswith("dist")
    model.attach_kvstore(kv if dist else settings["kvstore"], update_on_kvstore=settings["optimizer_on"] == "servers")
    progress.restore_optimizer(resumed)
    result = _loop(model, data, progress)
    if kv.rank == 0:
        result["checkpoint"] = progress.checkpoint(final=True)
        result["val_accuracy"] = progress.validate()
    return result


def _open_shard(settings: dict, rank: int, num_workers: int):
    from h3spark.feed import DataIterator

    return DataIterator(settings["dataset_uri"], settings.get("train_split"), batch_size=settings["batch_size"],
                        shuffle=True, seed=settings["seed"], rank=rank, num_workers=num_workers, drop_last=True,
                        prefetch=2)


class MXNetProgress(Progress):
    """A worker's progress with the Gluon trainer's slots (when the workers run the optimizer)."""

    engine = "mxnet"
    optimizer_files = (OPTIMIZER_FILE,)

    def _on_workers(self) -> bool:
        return self.settings["optimizer_on"] == "workers"

    def optimizer_state(self) -> tuple[dict[str, bytes], dict]:
        meta = {"optimizer_state": False, "kvstore": self.settings["kvstore"]}
        if not self._on_workers():
            return {}, meta
        arrays, structure = optimizer_state(self.model.trainer)
        files = {OPTIMIZER_FILE: ndarrays_to_bytes(arrays or {"_": mx.nd.zeros((1,))})}
        return files, {**meta, "optimizer_state": True, "optimizer": structure}

    def restore_optimizer(self, resumed) -> None:
        if resumed is None:
            return
        meta, files = resumed
        if meta.get("optimizer_state") and self._on_workers():
            restore_optimizer_state(self.model.trainer, bytes_to_ndarrays(files[OPTIMIZER_FILE]), meta["optimizer"])


def _loop(model, data, progress: MXNetProgress) -> dict:
    started, samples, loss = time.perf_counter(), 0, float("nan")
    for features, labels in progress.batches(data, data.iter_epoch):
        loss = model.train_step(features, labels)
        samples += len(labels)
        progress.after_step(loss)
    mx.nd.waitall()
    return progress.finish(samples, time.perf_counter() - started, loss)
