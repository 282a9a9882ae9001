"""The experiment's best trial as the ``training:`` section: what ``h3spark run`` trains when a config has both.

A space key is a training option (``lr``, ``batch_size``, ``momentum``, ...), a parameter of the ``mlp``
(``hidden``: a trial's width ``64`` trains as ``hidden: [64]``; ``classes``) or, for a model spec, a layer's
option (``layers.NAME.OPTION``). :func:`best_params_problems` checks that before anything runs.

    >>> trained = with_best_params(config, {"lr": 0.1, "hidden": 96})
    >>> trained.training.lr, trained.training.params["hidden"]
    (0.1, [96])
"""

from __future__ import annotations

from typing import Any

from h3spark.config import LAYER_PREFIX, H3SparkConfig, TrainingConfig
from h3spark.errors import ConfigError

MLP_KEYS = ("hidden", "classes")
_NOT_SEARCHABLE = ("engine", "model", "params")


def best_params_problems(config: H3SparkConfig) -> list[str]:
    """Why the best trial of ``config.experiment`` could not be trained by ``config.training`` (empty: it can)."""
    experiment, training = config.experiment, config.training
    if experiment is None or training is None:
        return []
    engine = (experiment.model.engine if experiment.model is not None else "sklearn")
    if experiment.train_fn is None and engine != training.engine:
        return [f"experiment.model.engine: training trains the best trial's hyperparameters, so both need the same "
                f"engine. Got experiment {engine!r} and training {training.engine!r} instead."]
    return [f"experiment.space.{key}: {problem}" for key in experiment.space
            if (problem := _key_problem(key, training)) is not None]


def _key_problem(key: str, training: TrainingConfig) -> str | None:
    if key in TrainingConfig.model_fields and key not in _NOT_SEARCHABLE:
        return None
    if key in MLP_KEYS and training.model == "mlp":
        return None
    if key.startswith(LAYER_PREFIX) and isinstance(training.model, dict):
        return None
    return (f"training has no option {key!r} to train the best trial's value with. Search training options "
            f"(lr, batch_size, momentum, ...), the mlp's {' and '.join(MLP_KEYS)} (training.model: mlp) or a spec's "
            f"layers.NAME.OPTION (training.model: a spec).")


def with_best_params(config: H3SparkConfig, params: dict[str, Any]) -> H3SparkConfig:
    """A copy of ``config`` whose ``training:`` holds the best trial's ``params`` (checked again as the loader does)."""
    problems = best_params_problems(config)
    if problems:
        raise ConfigError(config.name, problems)
    data = config.training.model_dump(exclude_unset=True)
    for key, value in params.items():
        if key in MLP_KEYS:
            data.setdefault("params", {})[key] = [value] if key == "hidden" and not isinstance(value, list) else value
        elif key.startswith(LAYER_PREFIX):
            from h3spark.train.engines.spec_params import apply_overrides

            data["model"], _ = apply_overrides(data["model"], {key: value})
        else:
            data[key] = value
    from h3spark.config import validate
    from h3spark.train import validation_context

    whole = {**config.model_dump(exclude_unset=True), "training": data}
    return validate(whole, H3SparkConfig, f"{config.name} with the best trial's {params} in training:",
                    context=validation_context())
