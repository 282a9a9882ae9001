"""The ``predict:`` section: batch inference with a trained model (``h3spark predict CONFIG``).

    predict:
      model: checkpoints/digits        # a model file, a folder holding one, a training run's checkpoints,
                                       # an experiment's folder; default: training's checkpoints
      pipeline: datasets/digits        # the dataset whose manifest holds the fitted pipeline; default:
                                       # dataset.uri when the config has a preprocess: section
      input: {format: csv, path: new/*.csv}   # a source (default: the config's source:)
      output:
        uri: datasets/digits_predicted # a dataset, published atomically; or
        # jdbc: {url: ..., table: predictions, mode: overwrite, ...}   a table (h3spark.storage.write_jdbc)
      keep: [id]                       # input columns copied into each prediction row

Relative paths are under the workdir and may not climb out of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from h3spark.config._base import StrictModel
from h3spark.config._jdbc import JdbcSinkConfig
from h3spark.config._paths import escape_message, escapes_workdir
from h3spark.config._sections import SourceConfig


def _inside_workdir(value: str | None) -> str | None:
    if isinstance(value, str) and escapes_workdir(value):
        raise ValueError(escape_message(value))
    return value


class PredictOutputConfig(StrictModel):
    """Where predictions go: a dataset (``uri``) or a database table (``jdbc``), one of the two."""

    uri: str | None = Field(default=None, description="a dataset: file://, hdfs:// or a path under the workdir")
    overwrite: bool = Field(default=False, description="publish a new version of an existing dataset")
    jdbc: JdbcSinkConfig | None = Field(default=None, description="a table, written all rows or none")
    quarantine_uri: str | None = Field(default=None, description="the rows the pipeline refused, as a dataset; "
                                       "default: URI_quarantine for a dataset, none for a table")

    _paths = field_validator("uri", "quarantine_uri")(classmethod(lambda cls, value: _inside_workdir(value)))

    @model_validator(mode="after")
    def _one_target(self) -> "PredictOutputConfig":
        if (self.uri is None) == (self.jdbc is None):
            raise ValueError("set exactly one of uri (a dataset) and jdbc (a table)")
        return self


class PredictConfig(StrictModel):
    """Batch inference: a trained model (and the pipeline its data went through) applied to a source."""

    model: str | None = Field(default=None, description="a model file (.safetensors, model.joblib), a folder holding "
                              "one, a training run's checkpoints or an experiment's folder; default: training's "
                              "checkpoints")
    engine: Literal["numpy", "mxnet", "torch"] | None = Field(default=None, description="run a saved neural model "
                                                               "in this engine; default: the one that trained it")
    pipeline: str | None = Field(default=None, description="a dataset whose manifest holds the fitted pipeline; "
                                 "default: dataset.uri when the config has a preprocess: section")
    use_pipeline: bool = Field(default=True, description="false: the input already holds the model's feature vectors")
    input: SourceConfig | None = Field(default=None, description="the rows to predict; default: the config's source")
    output: PredictOutputConfig
    keep: list[str] = Field(default_factory=list, description="input columns copied into each prediction row")
    features: str = Field(default="features", description="without a pipeline: the column of feature vectors "
                          "(a list of numbers, or an h3spark dataset's binary vectors)")
    label: str | None = Field(default="label", description="a column of true labels: copied, and scored when present")
    max_bad_fraction: float = Field(default=0.01, ge=0, le=1, description="the share of rows the pipeline may refuse")
    partitions: int | None = Field(default=None, gt=0, description="repartition the input into this many tasks")
    batch_rows: int = Field(default=10000, gt=0, description="rows per Arrow batch handed to the model")

    _paths = field_validator("model", "pipeline")(classmethod(lambda cls, value: _inside_workdir(value)))
