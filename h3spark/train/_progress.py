"""One training worker's progress, whatever the engine: the batches left to train, the resume,
TensorBoard scalars and checkpoints (rank 0), the final validation and the worker's summary.

    >>> progress = MXNetProgress(model, rank, num_workers, settings)   # an engine's subclass
    >>> resumed = progress.resume()              # weights and step from settings["resume_from"]
    >>> progress.restore_optimizer(resumed)      # the slots, once the engine's optimizer is ready
    >>> for features, labels in progress.batches(data, epoch_batches):
    ...     progress.after_step(model.train_step(features, labels))

The model's ``step`` is the count. A checkpoint holds ``model.safetensors`` (what ``Model.save``
writes: weights by LAYER.PARAM with the spec and engine, so ``load_model`` reads it in any
engine), the engine's optimizer files (:meth:`Progress.optimizer_state`) and ``checkpoint.json``.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Iterable, Iterator

from h3spark.errors import UsageError
from h3spark.train._checkpoint import CheckpointWriter, load_checkpoint
from h3spark.train._model import MODEL_FILE, accuracy, model_file, read_model_file
from h3spark.train.engines.model import Model

logger = logging.getLogger(__name__)

FAIL_AT_STEP_ENV = "H3SPARK_FAIL_AT_STEP"  # fault injection for failure/resume tests
LOG_EVERY_STEPS = 10
VALIDATION_BATCH_SIZE = 1024


class Progress:
    """Steps, resume, TensorBoard and checkpoints of one worker (the last two on rank 0 only).
    Engines subclass it with their optimizer state; the rest is the same for every engine."""

    engine = ""
    optimizer_files: tuple[str, ...] = ()  # the names of the optimizer's files in a checkpoint

    def __init__(self, model: Model, rank: int, num_workers: int, settings: dict):
        self.model, self.rank, self.num_workers, self.settings = model, rank, num_workers, settings
        self.interval = settings["checkpoint_interval"]
        self.writer = _summary_writer(settings["log_dir"]) if rank == 0 and settings.get("log_dir") else None
        self.checkpoints = CheckpointWriter.from_settings(settings) if rank == 0 else None
        # the mean loss since the last checkpoint (summed as the engine returns it: no device sync
        # per step) goes into the next one: it picks the best checkpoint to keep
        self.loss_sum, self.loss_steps, self.last_loss = None, 0, None
        self.fail_at = int(os.environ.get(FAIL_AT_STEP_ENV, "0"))

    # --- what an engine adds -----------------------------------------------------------------

    def optimizer_state(self) -> tuple[dict[str, bytes], dict]:
        """``(files, meta)`` of the optimizer's state for a checkpoint."""
        return {}, {"optimizer_state": False}

    def restore_optimizer(self, resumed: tuple[dict, dict[str, bytes]] | None) -> None:
        """Put back the optimizer state of the checkpoint :meth:`resume` read (None: nothing to do)."""

    def log_loss(self, step: int, loss) -> None:
        self.writer.add_scalar("train/loss", float(loss), step)

    def flush(self) -> None:
        """Write what :meth:`log_loss` still holds (called once, at the end)."""

    # --- shared ------------------------------------------------------------------------------

    def resume(self) -> tuple[dict, dict[str, bytes]] | None:
        """Load the weights and the step of ``settings["resume_from"]``; return ``(meta, files)``
        for :meth:`restore_optimizer` (None without a checkpoint to resume)."""
        uri = self.settings.get("resume_from")
        if not uri:
            return None
        meta, files = load_checkpoint(uri, (MODEL_FILE, *self.optimizer_files))
        engine = meta.get("engine", "mxnet")
        if engine != self.engine:
            raise UsageError(f"{uri} was written by engine {engine!r}, not {self.engine}; point training.checkpoint_uri "
                             "elsewhere or resume with that engine.")
        if MODEL_FILE not in files:
            raise UsageError(f"{uri} has no {MODEL_FILE} (it was written by an h3spark before the model spec, with "
                             "the framework's own weight names); train without --resume to start a new run.")
        self.model.set_weights(read_model_file(files[MODEL_FILE], uri))
        self.model.step = int(meta["step"])
        logger.info("resuming from step %d of run %s rank=%d uri=%s", self.model.step, meta.get("run"), self.rank, uri)
        return meta, files

    def batches(self, data, epoch_batches: Callable[[int], Iterable]) -> Iterator:
        """The batches left to train, from the model's step to the end of the last epoch;
        ``epoch_batches(epoch)`` iterates one epoch of ``data`` (a DataIterator)."""
        per_epoch = data.batches_per_epoch
        for epoch in range(self.model.step // per_epoch, self.settings["epochs"]):
            skip = self.model.step - epoch * per_epoch  # batches of this epoch done before the resume
            for index, batch in enumerate(epoch_batches(epoch)):
                if index >= skip:
                    yield batch

    def after_step(self, loss) -> None:
        step = self.model.step
        if self.checkpoints is not None:
            self.loss_sum, self.loss_steps = loss if self.loss_sum is None else self.loss_sum + loss, self.loss_steps + 1
        if self.fail_at and step == self.fail_at and self.rank == self.num_workers - 1:
            raise RuntimeError(f"{FAIL_AT_STEP_ENV}={self.fail_at}: failing on purpose at step {step}")
        if self.writer is not None and step % LOG_EVERY_STEPS == 0:
            self.log_loss(step, loss)
        if self.checkpoints is not None and self.interval and step % self.interval == 0:
            self.checkpoint()

    def checkpoint(self, final: bool = False) -> str | None:
        """Save the model and the optimizer state as the checkpoint of this step (rank 0); its URI."""
        if self.checkpoints is None:
            return None
        files, meta = self.optimizer_state()
        files[MODEL_FILE] = model_file(self.model)
        meta = {"engine": self.engine, "final": final, "num_workers": self.num_workers,
                "optimizer_name": self.settings["optimizer"], **meta}
        if self.loss_steps:
            self.last_loss, self.loss_sum, self.loss_steps = float(self.loss_sum) / self.loss_steps, None, 0
        return self.checkpoints.save(self.model.step, files, meta, self.last_loss)

    def finish(self, samples: int, seconds: float, loss: float) -> dict:
        """Close TensorBoard (with the throughput) and return the worker's JSON summary."""
        rate = samples / max(seconds, 1e-9)
        if self.writer is not None:
            self.flush()
            self.writer.add_scalar("train/samples_per_s", rate, self.model.step)
            self.writer.close()
        return {"rank": self.rank, "num_workers": self.num_workers, "steps": self.model.step, "samples": samples,
                "seconds": round(seconds, 3), "samples_per_s": round(rate, 1), "loss": loss}

    def validate(self) -> float | None:
        """The accuracy on ``validation_split`` (None without one)."""
        split = self.settings.get("validation_split")
        if not split:
            return None
        from h3spark.feed import DataIterator

        uri = self.settings["dataset_uri"]
        data = DataIterator(uri, split, batch_size=VALIDATION_BATCH_SIZE)
        return round(accuracy(self.model, data, where=f"validation split {split!r} of {uri}"), 4)


def _summary_writer(log_dir: str):
    from h3spark.train._tensorboard import summary_writer

    return summary_writer(log_dir)
