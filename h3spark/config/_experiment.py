"""The ``experiment:`` section: a hyperparameter search run as parallel Spark tasks.

    experiment:
      search: grid                 # grid | random | evolution | single
      model: {engine: sklearn, name: logistic_regression, params: {max_iter: 2000}}
      space:
        C: [0.01, 0.1, 1, 10]
        lr: {type: loguniform, low: 1.0e-4, high: 1.0e-1}
      metric: accuracy
      direction: max
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from h3spark.config._base import ERROR_AT, StrictModel
from h3spark.config._space import Choice, Domain, parse_space
from h3spark.config._training import check_spec

#: The prefix of a param that sets an option of a spec's layer: ``layers.NAME.OPTION``.
LAYER_PREFIX = "layers."
# the built-in models' params that shape a network, which a spec sets with its layers instead
_SHAPE_PARAMS = ("hidden", "classes", "dropout", "channels")


def layer_keys(params: dict[str, Any]) -> list[str]:
    """The keys of ``params`` (or of a space) that address a spec's layers, in order."""
    return [key for key in params if isinstance(key, str) and key.startswith(LAYER_PREFIX)]


def _layer_params(params: dict[str, Any]) -> dict[str, Any]:
    return {key: params[key] for key in layer_keys(params)}


def _shaper_message(key: str) -> str:
    return (f"{key!r} shapes the built-in mlp and cnn; a model spec sets its layers itself. Set a layer's option "
            "instead, e.g. layers.NAME.units.")


def _tried_values(domain: Domain) -> list:
    """The values a check tries: every value of a choice, the two ends of a range."""
    return list(domain.values) if isinstance(domain, Choice) else [domain.from_unit(0.0), domain.from_unit(1.0)]


def _problem(at: str, message: str) -> PydanticCustomError:
    """An error the loader reports at ``experiment.model.<at>`` (and that key's line)."""
    return PydanticCustomError("experiment_model", "{message}", {"message": message, ERROR_AT: at})


class ExperimentModelConfig(StrictModel):
    """A built-in trainer: a scikit-learn estimator, the Gluon ``mlp``/``cnn`` or a torch ``mlp``
    by ``name``; or, for mxnet and torch, a model ``spec`` (the layers, as ``training.model``).

    With a spec, trials range over its layers' options with ``layers.NAME.OPTION`` keys in
    ``params`` or the space (``layers.hidden.units: [32, 64]``); the trainer merges them into the
    spec with ``h3spark.train.engines.spec_params.apply_overrides`` and reads the training
    options (lr, weight_decay, optimizer, ...) from the rest.
    """

    engine: Literal["sklearn", "mxnet", "torch"] = "sklearn"
    name: str = "logistic_regression"
    spec: dict[str, Any] | None = Field(default=None, description="mxnet/torch: a model spec {input_shape, init, layers}")
    params: dict[str, Any] = Field(default_factory=dict, description="fixed params every trial gets")

    @model_validator(mode="after")
    def _spec_rules(self, info: ValidationInfo) -> "ExperimentModelConfig":
        if self.spec is None:
            if layer_keys(self.params):
                raise _problem("params", f"{layer_keys(self.params)[0]!r} sets an option of a spec's layer; "
                                         "give the model as experiment.model.spec to use it.")
            return self
        if self.engine == "sklearn":
            raise _problem("spec", "a model spec trains on engine mxnet or torch; set experiment.model.engine.")
        if "name" in self.model_fields_set:
            raise _problem("name", "give either name (a built-in model) or spec (your layers), not both.")
        shapers = sorted(set(self.params) & set(_SHAPE_PARAMS))
        if shapers:
            raise _problem(f"params.{shapers[0]}", _shaper_message(shapers[0]))
        check_spec(self.spec, "experiment.model.spec", info, _layer_params(self.params))
        return self


class EarlyStoppingConfig(StrictModel):
    """The median stopping rule; off unless ``rule: median``."""

    rule: Literal["none", "median"] = "none"
    grace_steps: int = Field(default=1, ge=0)
    min_trials: int = Field(default=3, ge=1)


class KafkaChannelConfig(StrictModel):
    """Send trial reports over Kafka instead of the driver's TCP socket."""

    bootstrap_servers: str = Field(min_length=1)
    topic: str = Field(default="h3spark-experiment-metrics", min_length=1)


class ExperimentConfig(StrictModel):
    """What to search, how to train a trial, and where the experiment dir goes."""

    search: Literal["grid", "random", "evolution", "single"] = "grid"
    space: dict[str, Any] = Field(default_factory=dict)
    model: ExperimentModelConfig | None = None
    train_fn: str | None = Field(default=None, description="'package.module:function', instead of model:")
    metric: str = Field(default="accuracy", min_length=1)
    direction: Literal["max", "min"] = "max"
    samples: int | None = Field(default=None, gt=0)
    generations: int | None = Field(default=None, gt=0)
    population: int | None = Field(default=None, ge=4)
    seed: int = Field(default=0, ge=0)
    parallelism: int | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    dir: str | None = Field(default=None, description="the experiment dir; default experiments/NAME under the workdir")
    dataset: str | None = Field(default=None, description="the dataset trials read; default dataset.uri")
    holdout_fraction: float = Field(default=0.25, gt=0, lt=1)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    kafka: KafkaChannelConfig | None = None

    @field_validator("space")
    @classmethod
    def _valid_space(cls, value: dict[str, Any]) -> dict[str, Any]:
        from h3spark.errors import ConfigError

        if value:
            try:
                parse_space(value)
            except ConfigError as error:
                raise ValueError("; ".join(error.problems)) from None
        return value

    @field_validator("train_fn")
    @classmethod
    def _importable_form(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
            raise ValueError("must look like 'package.module:function'")
        return value

    @model_validator(mode="after")
    def _layer_options(self, info: ValidationInfo) -> "ExperimentConfig":
        """Space keys that address a spec's layers need a spec and must fit it, at every value tried
        (a choice's values, a range's ends); ``hidden``/``classes``/... shape the built-in models only."""
        if self.model is None or not self.space:
            return self
        keys = layer_keys(self.space)
        if self.model.spec is None:
            if keys:
                raise ValueError(f"space key {keys[0]!r} sets an option of a spec's layer; give the model as "
                                 "experiment.model.spec to search over its layers.")
            return self
        shapers = sorted(set(self.space) & set(_SHAPE_PARAMS))
        if shapers:
            raise ValueError(f"space key {shapers[0]!r}: {_shaper_message(shapers[0])}")
        domains = parse_space(self.space)
        fixed = _layer_params(self.model.params)
        for key in keys:
            for value in _tried_values(domains[key]):
                try:
                    check_spec(self.model.spec, "experiment.model.spec", info, {**fixed, key: value})
                except ValueError as error:
                    raise ValueError(f"space {key}={value!r}: {error}") from None
        return self

    @model_validator(mode="after")
    def _complete(self) -> "ExperimentConfig":
        needed = {"random": ["samples"], "evolution": ["generations", "population"]}.get(self.search, [])
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"search '{self.search}' needs {' and '.join(missing)}; add experiment.{missing[0]}")
        if self.model is not None and self.train_fn is not None:
            raise ValueError("give either model: or train_fn:, not both")
        if self.search != "single" and not self.space:
            raise ValueError(f"search '{self.search}' needs a space: of hyperparameters")
        return self
