"""The PyTorch engine: DistributedDataParallel over NCCL (GPUs) or gloo (CPU).

``train_worker(settings)`` runs in every worker process of a torch launch (see
``h3spark.train.distributed(..., framework="torch")``): one process per GPU, with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` from the
launcher (a Spark barrier stage, or local processes without Spark or Java). Each rank
reads its own even shard through ``h3spark.feed.DataIterator`` + ``TorchBatches``; rank 0
writes TensorBoard scalars and checkpoints.

DDP keeps every rank's parameters and optimizer state identical (gradients are
averaged before each step), so rank 0's checkpoint (model + optimizer slots, as
safetensors or .npz, never pickle) is the whole state, and a resume restores it on
every rank before wrapping the model in DDP.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time

from h3spark.errors import DataError, UsageError
from h3spark.train.engines.torch_models import accuracy, build_mlp, import_torch

logger = logging.getLogger(__name__)

torch = import_torch()  # torch's one install hint when it is missing
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

from h3spark.train._checkpoint import CheckpointWriter, load_checkpoint  # noqa: E402
from h3spark.train._labels import check_training_labels, model_classes  # noqa: E402
from h3spark.train.engines._torch_state import (  # noqa: E402
    TENSOR_SUFFIXES,
    bytes_to_tensors,
    optimizer_from_parts,
    optimizer_to_parts,
    tensor_file_name,
    tensors_to_bytes,
)

FAIL_AT_STEP_ENV = "H3SPARK_FAIL_AT_STEP"  # fault injection for failure/resume tests
LOG_EVERY_STEPS = 10
RENDEZVOUS_TIMEOUT_S = 120
OPTIMIZERS = ("sgd", "adam", "adamw")


def make_optimizer(params, settings: dict) -> torch.optim.Optimizer:
    name, extra = settings["optimizer"].lower(), dict(settings.get("optimizer_params") or {})
    if name == "sgd":
        return torch.optim.SGD(params, lr=settings["lr"], momentum=settings["momentum"], **extra)
    if name in ("adam", "adamw"):
        return getattr(torch.optim, "Adam" if name == "adam" else "AdamW")(params, lr=settings["lr"], **extra)
    raise UsageError(f"The 'optimizer' parameter of the torch engine must be one of {', '.join(OPTIMIZERS)}. "
                     f"Got {settings['optimizer']!r} instead.")


def select_device(gpus: int, local_rank: int) -> tuple[torch.device, str]:
    """``(device, backend)``: cuda + nccl when GPUs were asked for, else cpu + gloo."""
    if not gpus:
        return torch.device("cpu"), "gloo"
    if not torch.cuda.is_available():
        raise UsageError(f"training.gpus is {gpus} but torch sees no CUDA device on this host; "
                         "set gpus to 0 to train on CPU with gloo.")
    index = local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index), "nccl"


def train_worker(settings: dict) -> dict:
    """Train on this rank's shard with DDP; return a JSON summary (rank 0 adds checkpoint and accuracy)."""
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device, backend = select_device(int(settings.get("gpus") or 0), int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=RENDEZVOUS_TIMEOUT_S))
    try:
        return _train(settings, rank, world_size, device)
    finally:
        dist.destroy_process_group()


def _train(settings: dict, rank: int, world_size: int, device: torch.device) -> dict:
    data = _open_shard(settings, rank, world_size)
    params = settings.get("params") or {}
    check_training_labels(settings)
    in_features = int(torch.tensor(data.feature_shape).prod())
    model = build_mlp(in_features, list(params.get("hidden", [256])), model_classes(params), settings["seed"]).to(device)
    optimizer = make_optimizer(model.parameters(), settings)
    state = _TrainState(rank, world_size, settings)
    state.resume(model, optimizer, device)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    result = _loop(ddp, optimizer, data, state, device)
    if rank == 0:
        result["checkpoint"] = state.checkpoint(model, optimizer, final=True)
        result["val_accuracy"] = _validate(model, settings, device)
    return result


def _open_shard(settings: dict, rank: int, world_size: int):
    from h3spark.feed import DataIterator

    return DataIterator(settings["dataset_uri"], settings.get("train_split"), batch_size=settings["batch_size"],
                        shuffle=True, seed=settings["seed"], rank=rank, num_workers=world_size, drop_last=True,
                        prefetch=int(settings.get("prefetch", 4)))


class _TrainState:
    """Step counting, resume, TensorBoard and checkpoints (the last two on rank 0 only)."""

    def __init__(self, rank: int, world_size: int, settings: dict):
        self.rank, self.world_size, self.settings = rank, world_size, settings
        self.step = 0
        self.interval = settings["checkpoint_interval"]
        self.writer = _summary_writer(settings["log_dir"]) if rank == 0 and settings.get("log_dir") else None
        self.losses = _LossLog(self.writer) if self.writer is not None else None
        self.checkpoints = CheckpointWriter.from_settings(settings) if rank == 0 else None
        # the mean loss since the last checkpoint (summed on the device: no sync per step) picks the best one to keep
        self.loss_sum, self.loss_steps, self.last_loss = None, 0, None
        self.fail_at = int(os.environ.get(FAIL_AT_STEP_ENV, "0"))

    def resume(self, model: nn.Module, optimizer, device: torch.device) -> None:
        uri = self.settings.get("resume_from")
        if not uri:
            return
        names = tuple(stem + suffix for stem in ("model", "optimizer") for suffix in TENSOR_SUFFIXES)
        meta, files = load_checkpoint(uri, names)
        if meta.get("engine") != "torch":
            raise UsageError(f"{uri} was written by engine {meta.get('engine', 'mxnet')!r}, not torch; "
                             "point training.checkpoint_uri elsewhere or resume with that engine.")
        model.load_state_dict(_tensors(files, "model"))
        slots = {key: value.to(device) for key, value in _tensors(files, "optimizer").items()}
        optimizer.load_state_dict(optimizer_from_parts(slots, meta["optimizer"]))
        self.step = int(meta["step"])
        logger.info("resuming from step %d of run %s rank=%d uri=%s", self.step, meta.get("run"), self.rank, uri)

    def after_step(self, model, optimizer, loss) -> None:
        self.step += 1
        if self.checkpoints is not None:
            self.loss_sum, self.loss_steps = loss if self.loss_sum is None else self.loss_sum + loss, self.loss_steps + 1
        if self.fail_at and self.step == self.fail_at and self.rank == self.world_size - 1:
            raise RuntimeError(f"{FAIL_AT_STEP_ENV}={self.fail_at}: failing on purpose at step {self.step}")
        if self.losses is not None and self.step % LOG_EVERY_STEPS == 0:
            self.losses.add(self.step, loss)
        if self.rank == 0 and self.interval and self.step % self.interval == 0:
            self.checkpoint(model, optimizer)

    def checkpoint(self, model: nn.Module, optimizer, final: bool = False) -> str | None:
        if self.checkpoints is None:
            return None
        slots, structure = optimizer_to_parts(optimizer)
        files = {tensor_file_name("model"): tensors_to_bytes(model.state_dict()),
                 tensor_file_name("optimizer"): tensors_to_bytes(slots)}
        meta = {"engine": "torch", "optimizer_state": True, "optimizer": json.loads(json.dumps(structure)),
                "final": final, "num_workers": self.world_size, "optimizer_name": self.settings["optimizer"]}
        if self.loss_steps:
            self.last_loss, self.loss_sum, self.loss_steps = float(self.loss_sum) / self.loss_steps, None, 0
        return self.checkpoints.save(self.step, files, meta, self.last_loss)


def _tensors(files: dict[str, bytes], stem: str) -> dict[str, torch.Tensor]:
    for suffix in TENSOR_SUFFIXES:
        if stem + suffix in files:
            return bytes_to_tensors(stem + suffix, files[stem + suffix])
    raise DataError(f"the checkpoint has no {stem}{'/'.join(TENSOR_SUFFIXES)} file; it is incomplete.")


class _LossLog:
    """``train/loss`` every LOG_EVERY_STEPS steps without stalling the GPU: on CUDA the loss is copied
    to host memory asynchronously and written once that copy is done, at a later step or at the end
    (a plain ``float(loss)`` would wait for the device and drain its queue every few steps)."""

    def __init__(self, writer):
        self.writer, self.pending = writer, []

    def add(self, step: int, loss: torch.Tensor) -> None:
        if loss.device.type != "cuda":
            self.writer.add_scalar("train/loss", float(loss), step)
            return
        host = loss.detach().to("cpu", non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        self.pending.append((step, host, copied))
        self.flush(wait=False)

    def flush(self, wait: bool) -> None:
        while self.pending and (wait or self.pending[0][2].query()):
            step, host, copied = self.pending.pop(0)
            copied.synchronize()
            self.writer.add_scalar("train/loss", float(host), step)


def _summary_writer(log_dir: str):
    from h3spark.train._tensorboard import summary_writer

    return summary_writer(log_dir)


def _loop(ddp, optimizer, data, state: _TrainState, device: torch.device) -> dict:
    from h3spark.feed import TorchBatches

    loss_fn = nn.CrossEntropyLoss()
    per_epoch = data.batches_per_epoch
    started, samples, loss = time.perf_counter(), 0, torch.tensor(float("nan"))
    for epoch in range(state.step // per_epoch, state.settings["epochs"]):
        skip = state.step - epoch * per_epoch  # batches of this epoch done before the resume
        batches = TorchBatches(_EpochSource(data, epoch), device=device, non_blocking=device.type == "cuda")
        for index, (features, labels) in enumerate(batches):
            if index < skip:
                continue
            loss = _step(ddp, optimizer, loss_fn, features, labels)
            samples += len(labels)
            state.after_step(ddp.module, optimizer, loss)
    loss_value = float(loss)  # the one device sync of the loop
    seconds = time.perf_counter() - started
    if state.writer is not None:
        state.losses.flush(wait=True)
        state.writer.add_scalar("train/samples_per_s", samples / max(seconds, 1e-9), state.step)
        state.writer.close()
    return {"rank": state.rank, "num_workers": state.world_size, "steps": state.step, "samples": samples,
            "seconds": round(seconds, 3), "samples_per_s": round(samples / max(seconds, 1e-9), 1), "loss": loss_value,
            "device": str(device)}


class _EpochSource:
    """One epoch of a DataIterator as an iterable, for TorchBatches."""

    def __init__(self, data, epoch: int):
        self.data, self.epoch = data, epoch

    def __len__(self) -> int:
        return self.data.batches_per_epoch

    def __iter__(self):
        return self.data.iter_epoch(self.epoch)


def _step(ddp, optimizer, loss_fn, features, labels):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(ddp(features.reshape(features.shape[0], -1)), labels)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _validate(model: nn.Module, settings: dict, device: torch.device) -> float | None:
    split = settings.get("validation_split")
    if not split:
        return None
    from h3spark.feed import DataIterator

    data = DataIterator(settings["dataset_uri"], split, batch_size=1024)
    return round(accuracy(model, data, device, where=f"validation split {split!r} of {settings['dataset_uri']}"), 4)
