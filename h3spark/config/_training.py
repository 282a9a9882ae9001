"""The ``training:`` section: what to train, with which engine, and how it is distributed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from h3spark.config._base import StrictModel

DISTRIBUTED_MODELS = ("mlp",)


class TrainingConfig(StrictModel):
    """What to train. ``engine: sklearn`` trains on the driver; mxnet and torch run distributed.

    ``workers`` processes train (one Spark task each); MXNet ``dist_*`` kvstores also get
    ``servers`` parameter servers. ``optimizer_on: workers`` keeps the optimizer state on the
    workers, where checkpoints can save it (dist_sync, local); dist_async needs ``servers``.
    """

    engine: Literal["sklearn", "mxnet", "torch"] = "sklearn"
    model: str = "logistic_regression"
    params: dict[str, Any] = Field(default_factory=dict, description="sklearn: estimator params; mxnet/torch: e.g. hidden: [256]")
    holdout_fraction: float = Field(default=0.25, gt=0, lt=1)
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=256, gt=0)
    epochs: int = Field(default=1, gt=0)
    lr: float = Field(default=0.1, gt=0)
    kvstore: Literal["local", "device", "dist_sync", "dist_async"] = "dist_sync"
    workers: int = Field(default=2, ge=1)
    servers: int = Field(default=1, ge=0)
    optimizer: str = "sgd"
    momentum: float = Field(default=0.0, ge=0, lt=1)
    optimizer_params: dict[str, Any] = Field(default_factory=dict, description="extra optimizer arguments, e.g. wd")
    optimizer_on: Literal["workers", "servers"] = "workers"
    checkpoint_interval: int = Field(default=0, ge=0, description="steps between checkpoints; 0: only at the end")
    checkpoint_uri: str | None = Field(default=None, description="file:// or hdfs://; default: checkpoints/NAME in the workdir")
    log_dir: str | None = Field(default=None, description="local TensorBoard dir; default: logs/NAME in the workdir")
    train_split: str | None = None
    validation_split: str | None = None
    gpus: int = Field(default=0, ge=0, description="torch: GPUs to use, one process each (0: CPU with gloo)")
    launcher: Literal["spark", "local"] = "spark"

    @model_validator(mode="after")
    def _distributed_rules(self) -> "TrainingConfig":
        if self.engine == "sklearn":
            return self
        if "model" not in self.model_fields_set:
            self.model = "mlp"
        if self.model not in DISTRIBUTED_MODELS:
            raise ValueError(f"model {self.model!r} is not available for engine {self.engine!r}; use one of {list(DISTRIBUTED_MODELS)}")
        if self.engine == "mxnet":
            _check_mxnet(self)
        if self.engine == "torch" and self.gpus and self.workers != self.gpus:
            raise ValueError(f"the torch engine runs one process per GPU: set workers to {self.gpus} (gpus), not {self.workers}")
        return self


def _check_mxnet(config: TrainingConfig) -> None:
    if config.kvstore in ("local", "device") and config.workers != 1:
        raise ValueError(f"kvstore {config.kvstore!r} trains in one process: set workers to 1, or use dist_sync / dist_async")
    if config.kvstore.startswith("dist") and config.servers < 1:
        raise ValueError(f"kvstore {config.kvstore!r} needs at least 1 server: set servers to 1 or more")
    if config.kvstore == "dist_async" and config.optimizer_on == "workers":
        raise ValueError("dist_async updates on the servers (MXNet requires it): set optimizer_on to 'servers'")
