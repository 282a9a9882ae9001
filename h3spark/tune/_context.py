"""What a trial's ``train_fn(params, ctx)`` receives: data, logging, reporting, saving.

    >>> def train_fn(params, ctx):
    ...     for epoch in range(5):
    ...         ctx.report({"accuracy": fit_one_epoch(params["lr"])}, step=epoch)
    ...     return {"accuracy": evaluate()}
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Mapping

from h3spark.errors import ConfigError, UsageError
from h3spark.storage import join_uri, local_path
from h3spark.tune._tensorboard import LogdirSync, summary_writer, write_session_end, write_session_start

logger = logging.getLogger(__name__)


class TrialStopped(Exception):
    """Raised by ``ctx.report`` when the early-stopping rule stops this trial."""


@dataclass(frozen=True)
class Shard:
    """The part of the dataset this trial process reads: pass to DataIterator(rank=..., num_workers=...).

    A trial that trains in one process reads every row: rank 0 of 1. A trial process that is one
    rank of a data-parallel group gets its own shard from the group's ``RANK`` and ``WORLD_SIZE``
    (the variables torchrun and h3spark's torch launcher set), so the ranks read disjoint rows.
    """

    rank: int = 0
    num_workers: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Shard":
        """This process's shard by ``RANK`` / ``WORLD_SIZE``; rank 0 of 1 when neither is set."""
        environ = os.environ if environ is None else environ
        rank, world_size = environ.get("RANK"), environ.get("WORLD_SIZE")
        if rank is None and world_size is None:
            return cls()
        try:
            shard = cls(int(rank), int(world_size))
        except (TypeError, ValueError):
            shard = None
        if shard is None or shard.num_workers < 1 or not 0 <= shard.rank < shard.num_workers:
            raise UsageError(f"RANK={rank} and WORLD_SIZE={world_size} in the trial's environment name no shard: both must be "
                             "set, as ints with 0 <= RANK < WORLD_SIZE. Fix the launcher's variables, or unset both for a "
                             "trial that reads every row.")
        return shard


class TrialContext:
    """Given to ``train_fn``: ``params``, ``trial_id``, ``dataset_uri``, ``shard``, ``writer``,
    ``logdir`` and ``report(metrics, step)``; ``save_model(model)`` keeps the trained model."""

    def __init__(self, trial_id: int, name: str, params: dict, setup: dict, channel, gpus: list[str]):
        self.trial_id, self.name, self.params = trial_id, name, dict(params)
        self.dataset_uri: str | None = setup.get("dataset_uri")
        self.gpus = list(gpus)
        self.metric, self.direction = setup["metric"], setup["direction"]
        self.logdir_uri = join_uri(setup["experiment_dir"], f"trials/{name}")
        self.logdir = self._local_logdir(setup)
        self._channel = channel
        self._step = -1
        self.last_metrics: dict = {}
        self.model_path: str | None = None
        self.should_stop = False
        self.writer = None

    @property
    def shard(self) -> Shard:
        """This trial process's part of the dataset (:meth:`Shard.from_env`); read when asked, so a
        bad RANK / WORLD_SIZE fails the trial with its message."""
        return Shard.from_env()

    def _local_logdir(self, setup: dict) -> str:
        if self.logdir_uri.startswith("file:") or "://" not in self.logdir_uri:
            self._sync = None
            path = local_path(self.logdir_uri)
        else:  # remote storage: write locally, mirror with the storage layer
            path = tempfile.mkdtemp(prefix=f"h3spark-{self.name[:40]}-")
            self._sync = LogdirSync(path, self.logdir_uri, setup.get("sync_interval_s", 10.0))
        os.makedirs(path, exist_ok=True)
        return path

    def start(self) -> None:
        """Open the writer and write the HParams session start, visible before training begins."""
        self.writer = summary_writer(self.logdir)
        write_session_start(self.writer, self.params, wait=self._sync is not None)
        if self._sync:
            self._sync.sync()

    def report(self, metrics: dict, step: int | None = None) -> None:
        """Log intermediate metrics; raises TrialStopped if the stopping rule stops this trial."""
        if not isinstance(metrics, dict) or not metrics:
            raise ConfigError("ctx.report", [f"The 'metrics' parameter of report must be a non-empty dict. Got {metrics!r} instead."])
        self._step = self._step + 1 if step is None else int(step)
        self.last_metrics = dict(metrics)
        self._write_scalars(metrics, self._step)
        if self._sync:
            self._sync.maybe_sync()
        if self._channel.report(self.trial_id, self._step, metrics, self.score(metrics)):
            self.should_stop = True
            raise TrialStopped(f"trial {self.trial_id} stopped by the early-stopping rule at step {self._step}")

    def score(self, metrics: dict) -> float | None:
        value = metrics.get(self.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
            return None
        value = float(value)
        return value if self.direction == "max" else -value

    def _write_scalars(self, metrics: dict, step: int) -> None:
        for key, value in metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError):  # the driver names such a metric in the experiment's warnings
                logger.debug("metric %s=%r is no number, so TensorBoard does not get it trial=%s", key, value, self.trial_id)
                continue
            self.writer.add_scalar(key, number, step)
        self.writer.flush()

    def save_model(self, model) -> str:
        """Save an h3spark model (Model.save), a scikit-learn estimator (joblib), a Gluon block or a
        torch module (safetensors) in this trial's logdir."""
        from h3spark.tune._models import save_model

        self.model_path = save_model(model, os.path.join(self.logdir, "model"))
        return self.model_path

    def finish(self, status: str, metrics: dict) -> None:
        """Final metrics as scalars, the HParams session end, and the last sync."""
        if self.writer is None:
            return
        self._write_scalars(metrics, max(self._step, 0))
        write_session_end(self.writer, status)
        self.writer.close()
        if self._sync:
            self._sync.sync()
