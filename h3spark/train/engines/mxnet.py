"""The MXNet engine: a Gluon Trainer on a KVStore (dist_sync, dist_async, local, device).

``train_worker(settings)`` runs in every worker process of a launch (see
``h3spark.train.distributed``). Each worker reads its own even shard through
``h3spark.feed.DataIterator`` (equal batch counts, so dist_sync never waits on a
worker that ran out); rank 0 writes TensorBoard scalars and checkpoints.

Where the optimizer state lives decides what a checkpoint can hold:
- ``optimizer_on: workers`` (dist_sync, local): servers only sum gradients and every
  worker applies the same optimizer to the same summed gradient, so all workers hold
  identical slots and rank 0 saves them. Resume restores weights, slots and counters.
- ``optimizer_on: servers`` (required by dist_async): the state lives on the servers,
  which MXNet cannot save; checkpoints then hold the weights only, and a resume starts
  the slots afresh (``checkpoint.json`` says ``"optimizer_state": false``).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from h3spark.train.engines import mxnet_models as models

logger = logging.getLogger(__name__)

mx = models.import_mxnet()  # mxnet's one install hint when it is missing
autograd, gluon = mx.autograd, mx.gluon

from h3spark.train._checkpoint import CheckpointWriter, load_checkpoint  # noqa: E402
from h3spark.train._labels import check_training_labels, model_classes  # noqa: E402
from h3spark.train.engines._mxnet_optim import make_optimizer  # noqa: E402
from h3spark.train.engines._mxnet_state import (  # noqa: E402
    bytes_to_ndarrays,
    load_params,
    ndarrays_to_bytes,
    optimizer_state,
    params_to_bytes,
    restore_optimizer_state,
)

FAIL_AT_STEP_ENV = "H3SPARK_FAIL_AT_STEP"  # fault injection for failure/resume tests
LOG_EVERY_STEPS = 10


def build_mlp(hidden: list[int], classes: int, seed: int):
    """The MLP of ``mxnet_models.build_mlp``, initialised from ``seed`` (the same on every worker)."""
    mx.random.seed(seed)
    net = models.build_mlp(hidden, classes)
    net.initialize(mx.init.Xavier())
    return net


def train_worker(settings: dict) -> dict:
    """Train on this worker's shard; return a JSON summary (rank 0 adds the checkpoint URI)."""
    kv = mx.kv.create(settings["kvstore"])
    data = _open_shard(settings, kv.rank, kv.num_workers)
    params = settings.get("params") or {}
    check_training_labels(settings)
    net = build_mlp(list(params.get("hidden", [256])), model_classes(params), settings["seed"])
    net(mx.nd.zeros((1, *data.feature_shape)))  # materialise deferred shapes before loading/broadcast
    trainer = _trainer(net, kv, settings)
    state = _TrainState(kv.rank, kv.num_workers, settings)
    state.resume(net, trainer)
    result = _loop(net, trainer, data, state)
    if kv.rank == 0:
        result["checkpoint"] = state.checkpoint(net, trainer, final=True)
        result["val_accuracy"] = _validate(net, settings)
    return result


def _open_shard(settings: dict, rank: int, num_workers: int):
    from h3spark.feed import DataIterator

    return DataIterator(settings["dataset_uri"], settings.get("train_split"), batch_size=settings["batch_size"],
                        shuffle=True, seed=settings["seed"], rank=rank, num_workers=num_workers, drop_last=True,
                        prefetch=2)


def _trainer(net, kv, settings: dict):
    optimizer = make_optimizer(settings["optimizer"], settings["lr"], settings["momentum"], settings["optimizer_params"])
    on_servers = settings["optimizer_on"] == "servers"
    kvstore = kv if settings["kvstore"].startswith("dist") else settings["kvstore"]
    return gluon.Trainer(net.collect_params(), optimizer, kvstore=kvstore, update_on_kvstore=on_servers)


class _TrainState:
    """Step counting, resume, TensorBoard and checkpoints (the last two on rank 0 only)."""

    def __init__(self, rank: int, num_workers: int, settings: dict):
        self.rank, self.num_workers, self.settings = rank, num_workers, settings
        self.step = 0
        self.interval = settings["checkpoint_interval"]
        self.writer = _summary_writer(settings["log_dir"]) if rank == 0 and settings.get("log_dir") else None
        self.checkpoints = CheckpointWriter.from_settings(settings) if rank == 0 else None
        # the mean loss since the last checkpoint goes into the next one: it picks the best checkpoint to keep
        self.loss_sum, self.loss_steps, self.last_loss = 0.0, 0, None
        self.fail_at = int(os.environ.get(FAIL_AT_STEP_ENV, "0"))

    def resume(self, net, trainer) -> None:
        uri = self.settings.get("resume_from")
        if not uri:
            return
        meta, files = load_checkpoint(uri, ("params.nd", "optimizer.nd"))
        load_params(net, files["params.nd"])
        if meta.get("optimizer_state") and self.settings["optimizer_on"] == "workers":
            restore_optimizer_state(trainer, bytes_to_ndarrays(files["optimizer.nd"]), meta["optimizer"])
        self.step = int(meta["step"])
        logger.info("resuming from step %d of run %s rank=%d uri=%s", self.step, meta.get("run"), self.rank, uri)

    def after_step(self, net, trainer, loss: float) -> None:
        self.step += 1
        self.loss_sum, self.loss_steps = self.loss_sum + loss, self.loss_steps + 1
        if self.fail_at and self.step == self.fail_at and self.rank == self.num_workers - 1:
            raise RuntimeError(f"{FAIL_AT_STEP_ENV}={self.fail_at}: failing on purpose at step {self.step}")
        if self.writer is not None and self.step % LOG_EVERY_STEPS == 0:
            self.writer.add_scalar("train/loss", loss, self.step)
        if self.rank == 0 and self.interval and self.step % self.interval == 0:
            self.checkpoint(net, trainer)

    def checkpoint(self, net, trainer, final: bool = False) -> str | None:
        if self.checkpoints is None:
            return None
        files = {"params.nd": params_to_bytes(net)}
        meta = {"optimizer_state": False, "final": final, "num_workers": self.num_workers,
                "kvstore": self.settings["kvstore"], "optimizer_name": self.settings["optimizer"]}
        if self.settings["optimizer_on"] == "workers":
            arrays, structure = optimizer_state(trainer)
            files["optimizer.nd"] = ndarrays_to_bytes(arrays) if arrays else ndarrays_to_bytes({"_": mx.nd.zeros((1,))})
            meta.update(optimizer_state=True, optimizer=structure)
        if self.loss_steps:
            self.last_loss, self.loss_sum, self.loss_steps = self.loss_sum / self.loss_steps, 0.0, 0
        return self.checkpoints.save(self.step, files, meta, self.last_loss)


def _summary_writer(log_dir: str):
    from h3spark.train._tensorboard import summary_writer

    return summary_writer(log_dir)


def _loop(net, trainer, data, state: _TrainState) -> dict:
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    per_epoch = data.batches_per_epoch
    global_batch = data.batch_size * (state.num_workers if state.settings["kvstore"].startswith("dist") else 1)
    started, samples, loss_value = time.perf_counter(), 0, float("nan")
    for epoch in range(state.step // per_epoch, state.settings["epochs"]):
        skip = state.step - epoch * per_epoch  # batches of this epoch done before the resume
        for index, (features, labels) in enumerate(data.iter_epoch(epoch)):
            if index < skip:
                continue
            loss_value = _step(net, trainer, loss_fn, features, labels, global_batch)
            samples += len(labels)
            state.after_step(net, trainer, loss_value)
    mx.nd.waitall()
    seconds = time.perf_counter() - started
    if state.writer is not None:
        state.writer.add_scalar("train/samples_per_s", samples / max(seconds, 1e-9), state.step)
        state.writer.close()
    return {"rank": state.rank, "num_workers": state.num_workers, "steps": state.step, "samples": samples,
            "seconds": round(seconds, 3), "samples_per_s": round(samples / max(seconds, 1e-9), 1), "loss": loss_value}


def _step(net, trainer, loss_fn, features: np.ndarray, labels: np.ndarray, global_batch: int) -> float:
    data = mx.nd.array(features)
    label = mx.nd.array(labels)
    with autograd.record():
        loss = loss_fn(net(data), label)
    loss.backward()
    trainer.step(global_batch)
    return float(loss.mean().asscalar())


def _validate(net, settings: dict) -> float | None:
    split = settings.get("validation_split")
    if not split:
        return None
    from h3spark.feed import DataIterator

    data = DataIterator(settings["dataset_uri"], split, batch_size=1024)
    return round(models.accuracy(net, data, where=f"validation split {split!r} of {settings['dataset_uri']}"), 4)
