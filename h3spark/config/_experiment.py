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

from pydantic import Field, field_validator, model_validator

from h3spark.config._base import StrictModel


class ExperimentModelConfig(StrictModel):
    """A built-in trainer: a scikit-learn estimator, the Gluon ``mlp``/``cnn`` or a torch ``mlp``."""

    engine: Literal["sklearn", "mxnet", "torch"] = "sklearn"
    name: str = "logistic_regression"
    params: dict[str, Any] = Field(default_factory=dict, description="fixed params every trial gets")


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
        from h3spark.config._space import parse_space

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
