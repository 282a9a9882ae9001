"""The root of an h3spark YAML config: one optional section per stage."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from h3spark.config._actors import ActorsConfig
from h3spark.config._base import ERROR_AT, StrictModel
from h3spark.config._experiment import ExperimentConfig
from h3spark.config._gates import GatesConfig
from h3spark.config._paths import WORKDIR_PATHS, escape_message, escapes_workdir
from h3spark.config._predict import PredictConfig
from h3spark.config._preprocess import PreprocessConfig
from h3spark.config._sections import DatasetConfig, SourceConfig, SparkConfig, StorageConfig, TrainingConfig
from h3spark.config._stream import StreamConfig
from h3spark.config._web import WebConfig


class H3SparkConfig(StrictModel):
    """A whole experiment config; ``h3spark run`` runs each stage whose section is present."""

    name: str = Field(min_length=1)
    workdir: str | None = None
    spark: SparkConfig = Field(default_factory=SparkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    source: SourceConfig | None = None
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    preprocess: PreprocessConfig | None = None
    training: TrainingConfig | None = None
    experiment: ExperimentConfig | None = None
    actors: ActorsConfig | None = None
    stream: StreamConfig | None = None
    gates: GatesConfig | None = None
    predict: PredictConfig | None = None
    web: WebConfig | None = None

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("must start with a letter or digit and use only letters, digits, '_', '.' and '-'")
        return value

    @field_validator(*sorted({section for section, _ in WORKDIR_PATHS}))
    @classmethod
    def _paths_stay_in_the_workdir(cls, section, info):
        for owner, key in WORKDIR_PATHS:
            value = getattr(section, key, None) if owner == info.field_name else None
            if isinstance(value, str) and escapes_workdir(value):
                raise PydanticCustomError("path_escapes_workdir", "{message}",
                                          {"message": escape_message(value), ERROR_AT: key})
        return section

    @model_validator(mode="after")
    def _reader_fits_source(self) -> "H3SparkConfig":
        if self.preprocess and self.source and self.preprocess.reader == "pyarrow" and self.source.format != "parquet":
            raise ValueError(f"preprocess.reader 'pyarrow' reads Parquet sources only, and source.format is "
                             f"'{self.source.format}'. Set preprocess.reader: auto (or spark).")
        return self
