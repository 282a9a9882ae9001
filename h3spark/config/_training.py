"""The ``training:`` section: what to train, with which engine, and how it is distributed.

``model`` is an sklearn estimator's name (engine sklearn), or, for mxnet and torch, the
``mlp`` shorthand (``params``: hidden, classes) or a model spec, the network layer
by layer::

    training:
      engine: mxnet
      model:
        input_shape: [1, 8, 8]
        layers:
          - {type: conv2d, name: conv1, filters: 16, kernel: 3, padding: 1, activation: relu}
          - {type: flatten}
          - {type: dense, name: logits, units: 10}
      optimizer: adam          # sgd (with momentum), adam, dcasgd
      lr: 0.01
      warmup_steps: 20
      schedule: cosine         # constant | step (step_size, gamma) | cosine (total_steps, min_lr)
      total_steps: 400
      weight_decay: 1.0e-4
      clip_norm: 5.0

A spec's layers and shapes are checked by the train layer (above config): a loader that
validates for training passes that check in pydantic's validation context under
:data:`SPEC_CHECK` (``h3spark.train.validation_context()``; the CLI does).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from h3spark.config._base import ERROR_AT, StrictModel
from h3spark.errors import ConfigError

DISTRIBUTED_MODELS = ("mlp",)
#: What the mxnet and torch engines read from ``training.params`` (their mlp), and what each must be.
MLP_PARAMS = {"hidden": "a non-empty list of positive layer widths, e.g. [128]",
              "classes": "an int of at least 2, the number of labels"}
#: The key of pydantic's validation context that holds the model-spec check, a callable
#: ``check(spec: dict, where: str, params: dict | None = None) -> None`` raising ConfigError
#: (``params``: ``layers.NAME.OPTION`` overrides to apply first). Without it a spec is not checked.
SPEC_CHECK = "check_model_spec"
#: The optimizers of the model contract, on both neural engines (mxnet also takes MXNet's other names).
OPTIMIZERS = ("sgd", "adam", "dcasgd")
#: ``optimizer_params`` keys still honoured, by engine: the engine's own spelling -> the training
#: option it sets (torch's ``betas`` pair sets beta1 and beta2).
OPTIMIZER_PARAMS = {"mxnet": {"wd": "weight_decay", "beta1": "beta1", "beta2": "beta2", "epsilon": "epsilon",
                              "lamda": "dcasgd_lambda"},
                    "torch": {"weight_decay": "weight_decay", "betas": "betas", "eps": "epsilon"}}
# optimizer_params keys that became training keys: the key to set instead
_MOVED_PARAMS = {"momentum": "momentum", "lr": "lr", "learning_rate": "lr", "clip_gradient": "clip_norm",
                 "max_norm": "clip_norm", "wd": "weight_decay", "weight_decay": "weight_decay"}
# the values each option optimizer_params may set must take
_PARAM_RANGES = {"weight_decay": (lambda v: v >= 0, "a number >= 0"), "epsilon": (lambda v: v > 0, "a number > 0"),
                 "beta1": (lambda v: 0 <= v < 1, "a number in the range [0, 1)"),
                 "beta2": (lambda v: 0 <= v < 1, "a number in the range [0, 1)"),
                 "dcasgd_lambda": (lambda v: v >= 0, "a number >= 0")}


class TrainingConfig(StrictModel):
    """What to train. ``engine: sklearn`` trains on the driver; mxnet and torch run distributed.

    ``workers`` processes train (one Spark task each); MXNet ``dist_*`` kvstores also get
    ``servers`` parameter servers. ``optimizer_on: workers`` keeps the optimizer state on the
    workers, where checkpoints can save it (dist_sync, local); dist_async needs ``servers``.
    The optimizer and schedule options (optimizer .. min_lr) apply to mxnet and torch;
    ``h3spark.train.train_options`` turns them into the engines' TrainOptions.
    """

    engine: Literal["sklearn", "mxnet", "torch"] = "sklearn"
    model: str | dict[str, Any] = Field(default="logistic_regression",
                                        description="sklearn: an estimator; mxnet/torch: mlp, or a spec {input_shape, init, layers}")
    params: dict[str, Any] = Field(default_factory=dict, description="sklearn: estimator params; mxnet/torch: e.g. hidden: [256]")
    holdout_fraction: float = Field(default=0.25, gt=0, lt=1)
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=256, gt=0)
    epochs: int = Field(default=1, gt=0)
    lr: float = Field(default=0.1, gt=0)
    kvstore: Literal["local", "device", "dist_sync", "dist_async"] = "dist_sync"
    workers: int = Field(default=2, ge=1)
    servers: int = Field(default=1, ge=0)
    optimizer: str = Field(default="sgd", description="sgd, adam or dcasgd (mxnet: also MXNet's other optimizers)")
    momentum: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, description="L2 on every trained weight, added to its gradient")
    clip_norm: float = Field(default=0.0, ge=0, description="the most each step's gradient norm may be (all weights together); 0: off")
    warmup_steps: int = Field(default=0, ge=0, description="steps over which the rate rises linearly to lr")
    schedule: Literal["constant", "step", "cosine"] = "constant"
    step_size: int = Field(default=1000, ge=1, description="schedule step: steps between two decays")
    gamma: float = Field(default=0.1, gt=0, description="schedule step: the factor of each decay")
    total_steps: int = Field(default=0, ge=0, description="schedule cosine: the step where the rate reaches min_lr")
    min_lr: float = Field(default=0.0, ge=0, description="schedule cosine: the last rate")
    optimizer_params: dict[str, Any] = Field(default_factory=dict, description="mxnet: wd, beta1, beta2, epsilon, lamda; "
                                                                               "torch: weight_decay, betas, eps")
    optimizer_on: Literal["workers", "servers"] = "workers"
    checkpoint_interval: int = Field(default=0, ge=0, description="steps between checkpoints; 0: only at the end")
    keep_checkpoints: int = Field(default=3, ge=1, description="checkpoints a run keeps: the last K, plus its best (lowest loss)")
    checkpoint_uri: str | None = Field(default=None, description="file:// or hdfs://; default: checkpoints/NAME in the workdir")
    log_dir: str | None = Field(default=None, description="local TensorBoard dir; default: logs/NAME in the workdir")
    train_split: str | None = None
    validation_split: str | None = None
    gpus: int = Field(default=0, ge=0, description="torch: GPUs to use, one process each (0: CPU with gloo)")
    launcher: Literal["spark", "local"] = "spark"

    @field_validator("model")
    @classmethod
    def _model_spec(cls, value: str | dict[str, Any], info: ValidationInfo) -> str | dict[str, Any]:
        if isinstance(value, dict):
            engine = info.data.get("engine", "sklearn")
            if engine == "sklearn":
                raise ValueError("a model spec (a mapping of layers) trains on engine mxnet or torch; engine 'sklearn' "
                                 "takes an estimator's name, e.g. logistic_regression. Set training.engine.")
            check_spec(value, "training.model", info)
        return value

    @field_validator("params")
    @classmethod
    def _mlp_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        engine = info.data.get("engine", "sklearn")
        if engine != "sklearn" and isinstance(info.data.get("model"), dict):
            if value:
                raise ValueError(f"a model spec sets its layers itself; params ({', '.join(sorted(value))}) go with "
                                 "model: mlp. Remove them, or set the option on the spec's layer.")
        elif engine != "sklearn":
            _check_mlp_params(value, engine)
        return value

    @model_validator(mode="after")
    def _distributed_rules(self) -> "TrainingConfig":
        if self.engine == "sklearn":
            return self
        if "model" not in self.model_fields_set:
            self.model = "mlp"
        if isinstance(self.model, str) and self.model not in DISTRIBUTED_MODELS:
            raise ValueError(f"The 'model' parameter must be one of {list(DISTRIBUTED_MODELS)} for engine {self.engine!r}. "
                             f"Got {self.model!r} instead. Or give a model spec: {{input_shape: [...], layers: [...]}}.")
        if self.engine == "mxnet":
            _check_mxnet(self)
        else:
            _check_torch(self)
        check_schedule(self)
        _check_optimizer_params(self)
        return self


def check_spec(spec: dict[str, Any], where: str, info: ValidationInfo, params: dict[str, Any] | None = None) -> None:
    """Run the model-spec check the loader put in the validation context (see :data:`SPEC_CHECK`),
    if any, on ``spec`` with ``params``' layer overrides; its problems become one ValueError."""
    check = (info.context or {}).get(SPEC_CHECK)
    if check is None:
        return
    try:
        check(spec, where, params)
    except ConfigError as error:
        raise ValueError("; ".join(error.problems)) from None


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


def _check_torch(config: TrainingConfig) -> None:
    if config.gpus and config.workers != config.gpus:
        raise ValueError(f"The 'workers' parameter must equal gpus ({config.gpus}) with engine 'torch', which runs one "
                         f"process per GPU. Got {config.workers} instead.")
    if config.optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"The 'optimizer' parameter must be one of {list(OPTIMIZERS)} with engine 'torch'. "
                         f"Got {config.optimizer!r} instead.")
    if config.optimizer_on != "workers":
        raise ValueError("The 'optimizer_on' parameter must be 'workers' with engine 'torch' (DDP has no parameter "
                         f"servers). Got {config.optimizer_on!r} instead.")


def check_schedule(config: Any) -> None:
    """A cosine schedule names the step where it ends (any training section: a run's, a gate's, an actor's)."""
    if config.schedule == "cosine" and config.total_steps < 1:
        raise _problem("total_steps", "the cosine schedule needs total_steps >= 1, the step where the rate reaches "
                                      f"min_lr. Got {config.total_steps} instead.")


def _check_optimizer_params(config: TrainingConfig) -> None:
    honoured = OPTIMIZER_PARAMS[config.engine]
    for key, value in config.optimizer_params.items():
        at = f"optimizer_params.{key}"
        if key not in honoured:
            moved = _MOVED_PARAMS.get(key)
            hint = (f"set training.{moved} instead" if moved else
                    f"the {config.engine} engine's optimizer_params are {', '.join(sorted(honoured))}. Remove it")
            raise _problem(at, f"{key!r} is no optimizer_params key of engine {config.engine!r}; {hint}.")
        option = honoured[key]
        if option in config.model_fields_set:
            raise _problem(at, f"training.{option} is set too; give it once, as training.{option}, and remove this key.")
        values = value if option == "betas" else [value]
        options = ("beta1", "beta2") if option == "betas" else (option,)
        if option == "betas" and not (isinstance(value, list) and len(value) == 2):
            raise _problem(at, f"betas must be a list of two numbers [beta1, beta2]. Got {value!r} instead.")
        for name, item in zip(options, values):
            accepts, expected = _PARAM_RANGES[name]
            if not (_is_number(item) and accepts(item)):
                raise _problem(at, f"{name} must be {expected}. Got {item!r} instead.")


def _problem(at: str, message: str) -> PydanticCustomError:
    """An error the loader reports at ``training.<at>`` (and that key's line)."""
    return PydanticCustomError("training_option", "{message}", {"message": message, ERROR_AT: at})
