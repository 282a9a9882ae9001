"""The ``training:`` section: what to train, with which engine, and how it is distributed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from h3spark.config._base import StrictModel

DISTRIBUTED_MODELS = ("mlp",)
#: What the mxnet and torch engines read from ``training.params`` (their mlp), and what each must be.
MLP_PARAMS = {"hidden": "a non-empty list of positive layer widths, e.g. [128]",
              "classes": "an int of at least 2, the number of labels"}


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
    keep_checkpoints: int = Field(default=3, ge=1, description="checkpoints a run keeps: the last K, plus its best (lowest loss)")
    checkpoint_uri: str | None = Field(default=None, description="file:// or hdfs://; default: checkpoints/NAME in the workdir")
    log_dir: str | None = Field(default=None, description="local TensorBoard dir; default: logs/NAME in the workdir")
    train_split: str | None = None
    validation_split: str | None = None
    gpus: int = Field(default=0, ge=0, description="torch: GPUs to use, one process each (0: CPU with gloo)")
    launcher: Literal["spark", "local"] = "spark"

    @field_validator("params")
    @classmethod
    def _mlp_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        engine = info.data.get("engine", "sklearn")
        if engine != "sklearn":
            _check_mlp_params(value, engine)
        return value

    @model_validator(mode="after")
    def _distributed_rules(self) -> "TrainingConfig":
        if self.engine == "sklearn":
            return self
        if "model" not in self.model_fields_set:
            self.model = "mlp"
        if self.model not in DISTRIBUTED_MODELS:
            raise ValueError(f"The 'model' parameter must be one of {list(DISTRIBUTED_MODELS)} for engine {self.engine!r}. "
                             f"Got {self.model!r} instead.")
        if self.engine == "mxnet":
            _check_mxnet(self)
        else:
            _check_torch(self)
        return self


def _check_mlp_params(params: dict[str, Any], engine: str) -> None:
    unknown = sorted(set(params) - set(MLP_PARAMS))
    if unknown:
        raise ValueError(f"{unknown[0]!r} is no parameter of the {engine} mlp, which reads only "
                         f"{' and '.join(sorted(MLP_PARAMS))}. Remove it.")
    hidden, classes = params.get("hidden", [256]), params.get("classes", 10)
    if not (isinstance(hidden, list) and hidden and all(_is_int(width) and width >= 1 for width in hidden)):
        raise ValueError(f"The 'hidden' parameter must be {MLP_PARAMS['hidden']}. Got {hidden!r} instead.")
    if not (_is_int(classes) and classes >= 2):
        raise ValueError(f"The 'classes' parameter must be {MLP_PARAMS['classes']}. Got {classes!r} instead.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_mxnet(config: TrainingConfig) -> None:
    if config.kvstore in ("local", "device") and config.workers != 1:
        raise ValueError(f"The 'workers' parameter must be 1 with kvstore {config.kvstore!r}, which trains in one process. "
                         f"Got {config.workers} instead. Use kvstore dist_sync or dist_async for more workers.")
    if config.kvstore.startswith("dist") and config.servers < 1:
        raise ValueError(f"The 'servers' parameter must be an int in the range [1, inf) with kvstore {config.kvstore!r}. "
                         f"Got {config.servers} instead.")
    if config.kvstore == "dist_async" and config.optimizer_on == "workers":
        raise ValueError("The 'optimizer_on' parameter must be 'servers' with kvstore 'dist_async' (MXNet updates on the "
                         "servers there). Got 'workers' instead.")
    if config.gpus:
        raise ValueError(f"The 'gpus' parameter must be 0 with engine 'mxnet' (its CUDA wheels do not run on current GPUs). "
                         f"Got {config.gpus} instead. Use engine 'torch' to train on GPUs.")


TORCH_OPTIMIZERS = ("sgd", "adam", "adamw")


def _check_torch(config: TrainingConfig) -> None:
    if config.gpus and config.workers != config.gpus:
        raise ValueError(f"The 'workers' parameter must equal gpus ({config.gpus}) with engine 'torch', which runs one "
                         f"process per GPU. Got {config.workers} instead.")
    if config.optimizer.lower() not in TORCH_OPTIMIZERS:
        raise ValueError(f"The 'optimizer' parameter must be one of {list(TORCH_OPTIMIZERS)} with engine 'torch'. "
                         f"Got {config.optimizer!r} instead.")
    if config.optimizer_on != "workers":
        raise ValueError("The 'optimizer_on' parameter must be 'workers' with engine 'torch' (DDP has no parameter "
                         f"servers). Got {config.optimizer_on!r} instead.")
