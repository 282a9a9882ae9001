"""The training options of a config (or a trial's params) as the engines' TrainOptions, and the
checks config validation borrows from the train layer.

    >>> train_options(config.training)                      # a TrainingConfig
    TrainOptions(optimizer='adam', lr=0.01, ...)
    >>> train_options(settings)                             # the JSON settings a worker gets
    >>> train_options({**fixed, **trial_params}, engine="torch")   # an experiment's trial
    >>> load_config(path, context=validation_context())     # shapes of model specs checked too
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from h3spark.config import OPTIMIZER_PARAMS, SPEC_CHECK
from h3spark.errors import ConfigError
from h3spark.train.engines.model import OPTIMIZERS, TrainOptions
from h3spark.train.engines.spec_params import check_model_spec

# the keys of a training section (or of trial params) that are TrainOptions fields, same name
_OPTION_KEYS = ("optimizer", "lr", "momentum", "weight_decay", "clip_norm", "warmup_steps", "schedule", "step_size",
                "gamma", "total_steps", "min_lr")


def train_options(values: Any, engine: str | None = None) -> TrainOptions:
    """The TrainOptions of a training section: a TrainingConfig, its ``model_dump()`` (the worker
    settings), or an experiment trial's params (``engine`` then names the engine whose
    ``optimizer_params`` spelling applies; a section's own ``engine`` otherwise). Keys that are
    no training option (epochs, batch_size, layers.*) are left out; ``optimizer_params`` keys
    (mxnet: wd, beta1, beta2, epsilon, lamda; torch: weight_decay, betas, eps) set their option.
    An optimizer outside sgd, adam and dcasgd (MXNet's other names) is a ConfigError.
    """
    section: Mapping[str, Any] = values.model_dump() if hasattr(values, "model_dump") else dict(values)
    chosen = {key: section[key] for key in _OPTION_KEYS if key in section}
    if "optimizer" in chosen:
        chosen["optimizer"] = str(chosen["optimizer"]).lower()
        if chosen["optimizer"] not in OPTIMIZERS:
            raise ConfigError("training.optimizer", [
                f"the engines' model contract trains with {', '.join(OPTIMIZERS)}. Got {section['optimizer']!r} "
                f"instead; set training.optimizer to one of them."])
    chosen.update(_from_optimizer_params(section.get("optimizer_params") or {}, engine or section.get("engine")))
    known = {field.name for field in fields(TrainOptions)}
    return TrainOptions(**{key: value for key, value in chosen.items() if key in known})


def _from_optimizer_params(params: Mapping[str, Any], engine: str | None) -> dict[str, Any]:
    honoured = OPTIMIZER_PARAMS.get(engine or "", {})
    options: dict[str, Any] = {}
    for key, value in params.items():
        if key not in honoured:
            raise ConfigError("training.optimizer_params", [
                f"{key!r} is no optimizer_params key of engine {engine!r}, which takes "
                f"{', '.join(sorted(honoured)) or 'none'}. Remove it, or set the training option it stands for."])
        if honoured[key] == "betas":
            options["beta1"], options["beta2"] = value
        else:
            options[honoured[key]] = value
    return options


def validation_context() -> dict[str, Any]:
    """Pydantic's validation context for ``load_config``: the model-spec check (layers and shapes)
    that config, below train, cannot import itself."""
    return {SPEC_CHECK: check_model_spec}
