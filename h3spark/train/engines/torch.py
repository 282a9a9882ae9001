"""The PyTorch engine: the model contract's :class:`TorchModel` under DistributedDataParallel,
over NCCL (GPUs) or gloo (CPU).

``train_worker(settings)`` runs in every worker process of a torch launch (see
``h3spark.train.distributed(..., framework="torch")``): one process per GPU, with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` from the
launcher (a Spark barrier stage, or local processes without Spark or Java). It builds the
run's model from ``training.model`` (a spec, or the ``mlp`` shorthand) and the training
options, wraps it in DDP (``TorchModel.wrap_ddp``) and trains on its own even shard, read
through ``h3spark.feed.DataIterator`` + ``TorchBatches`` (tensors already on the device,
pinned and copied non_blocking on CUDA, handed to ``TorchModel.train_tensors``); rank 0
writes TensorBoard scalars and checkpoints.

DDP keeps every rank's parameters and optimizer state identical (gradients are
averaged before each step), so rank 0's checkpoint (``model.safetensors`` as ``Model.save``
writes it, which ``load_model`` reads in any engine, and the optimizer's slots as
safetensors or .npz, never pickle) is the whole state, and a resume restores it on every
rank before wrapping the model in DDP.
"""

from __future__ import annotations

import datetime
import json
import os
import time

from h3spark.errors import DataError, UsageError
from h3spark.train.engines.torch_model import TorchModel, import_torch

torch = import_torch()  # torch's one install hint when it is missing
import torch.distributed as dist  # noqa: E402

from h3spark.train._labels import check_training_labels  # noqa: E402
from h3spark.train._model import training_spec  # noqa: E402
from h3spark.train._options import train_options  # noqa: E402
from h3spark.train._progress import Progress  # noqa: E402
from h3spark.train.engines._torch_state import (  # noqa: E402
    TENSOR_SUFFIXES,
    bytes_to_tensors,
    optimizer_from_parts,
    optimizer_to_parts,
    tensor_file_name,
    tensors_to_bytes,
)

RENDEZVOUS_TIMEOUT_S = 120


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
    check_training_labels(settings)
    model = TorchModel(training_spec(settings, data.feature_shape), seed=settings["seed"],
                       options=train_options(settings), device=str(device))
    progress = TorchProgress(model, rank, world_size, settings)
    progress.restore_optimizer(progress.resume())
    model.wrap_ddp(device_ids=[device.index] if device.type == "cuda" else None, rank=rank)
    result = _loop(model, data, progress, device)
    if rank == 0:
        result["checkpoint"] = progress.checkpoint(final=True)
        result["val_accuracy"] = progress.validate()
    return result


def _open_shard(settings: dict, rank: int, world_size: int):
    from h3spark.feed import DataIterator

    return DataIterator(settings["dataset_uri"], settings.get("train_split"), batch_size=settings["batch_size"],
                        shuffle=True, seed=settings["seed"], rank=rank, num_workers=world_size, drop_last=True,
                        prefetch=int(settings.get("prefetch", 4)))


class TorchProgress(Progress):
    """A rank's progress with the torch optimizer's slots, and losses read back from the GPU
    without stalling it."""

    engine = "torch"
    optimizer_files = tuple("optimizer" + suffix for suffix in TENSOR_SUFFIXES)

    def __init__(self, model: TorchModel, rank: int, world_size: int, settings: dict):
        super().__init__(model, rank, world_size, settings)
        self.losses = _LossLog(self.writer) if self.writer is not None else None

    def optimizer_state(self) -> tuple[dict[str, bytes], dict]:
        slots, structure = optimizer_to_parts(self.model.optimizer)
        return ({tensor_file_name("optimizer"): tensors_to_bytes(slots)},
                {"optimizer_state": True, "optimizer": json.loads(json.dumps(structure))})

    def restore_optimizer(self, resumed) -> None:
        if resumed is None:
            return
        meta, files = resumed
        name = next((name for name in self.optimizer_files if name in files), None)
        if name is None:
            raise DataError(f"the checkpoint {self.settings['resume_from']} has no {'/'.join(self.optimizer_files)} "
                            "file; it is incomplete. Resume from another one.")
        slots = {key: value.to(self.model.device) for key, value in bytes_to_tensors(name, files[name]).items()}
        self.model.optimizer.load_state_dict(optimizer_from_parts(slots, meta["optimizer"]))

    def log_loss(self, step: int, loss) -> None:
        self.losses.add(step, loss)

    def flush(self) -> None:
        self.losses.flush(wait=True)


class _LossLog:
    """``train/loss`` every few steps without stalling the GPU: on CUDA the loss is copied to host
    memory asynchronously and written once that copy is done, at a later step or at the end (a
    plain ``float(loss)`` would wait for the device and drain its queue every few steps)."""

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


class _EpochSource:
    """One epoch of a DataIterator as an iterable, for TorchBatches."""

    def __init__(self, data, epoch: int):
        self.data, self.epoch = data, epoch

    def __len__(self) -> int:
        return self.data.batches_per_epoch

    def __iter__(self):
        return self.data.iter_epoch(self.epoch)


def _loop(model: TorchModel, data, progress: TorchProgress, device: torch.device) -> dict:
    from h3spark.feed import TorchBatches

    def epoch_batches(epoch: int):
        return TorchBatches(_EpochSource(data, epoch), device=device, non_blocking=device.type == "cuda")

    started, samples, loss = time.perf_counter(), 0, None
    for features, labels in progress.batches(data, epoch_batches):
        loss = model.train_tensors(features, labels)
        samples += len(labels)
        progress.after_step(loss)
    loss_value = float("nan") if loss is None else float(loss)  # the one device sync of the loop
    result = progress.finish(samples, time.perf_counter() - started, loss_value)
    return {**result, "device": str(device)}
