"""Config sections of the foundation: spark, storage, source, dataset, training."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from h3spark.config._base import StrictModel
from h3spark.config._jdbc import JdbcSourceConfig
from h3spark.config._training import TrainingConfig  # noqa: F401 - moved there, still importable here


class SparkConfig(StrictModel):
    """Where Spark runs. A master set by spark-submit always wins over ``master``."""

    master: str = "local[*]"
    app_name: str = "h3spark"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)
    remote: str | None = Field(default=None, description=(
        "a Spark Connect server, e.g. sc://127.0.0.1:15002 (h3spark services up connect): launches ('h3spark train', "
        "'h3spark launch') run on its resident driver, with no JVM in this process; master and conf are the server's"))

    @field_validator("remote")
    @classmethod
    def _connect_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("sc://"):
            raise ValueError("must be a Spark Connect URL, sc://HOST:PORT (e.g. sc://127.0.0.1:15002)")
        return value

    @field_validator("master")
    @classmethod
    def _known_master(cls, value: str) -> str:
        prefixes = ("local", "spark://", "yarn", "k8s://", "mesos://")
        if not value.startswith(prefixes):
            raise ValueError("must be local[N], local[*], spark://HOST:PORT, yarn or k8s://URL")
        return value


class StorageConfig(StrictModel):
    """How Python reaches hdfs:// URIs (WebHDFS); file:// needs nothing."""

    webhdfs_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:9870; default: the NameNode host, port 9870")
    hdfs_user: str | None = None


class SourceConfig(StrictModel):
    """Where raw data comes from."""

    format: Literal["csv", "json", "parquet", "bundled", "kafka", "jdbc"]
    path: str | None = Field(default=None, description="file:// or hdfs:// URI (csv, json, parquet)")
    name: str | None = Field(default=None, description="a dataset bundled with scikit-learn (bundled)")
    topic: str | None = None
    bootstrap_servers: str | None = None
    jdbc: JdbcSourceConfig | None = Field(default=None, description="a database table over JDBC (jdbc)")
    options: dict[str, str | int | float | bool] = Field(default_factory=dict, description="passed to Spark's reader")

    @model_validator(mode="after")
    def _needs_location(self) -> "SourceConfig":
        needed = {"csv": "path", "json": "path", "parquet": "path", "bundled": "name", "kafka": "topic",
                  "jdbc": "jdbc"}[self.format]
        if getattr(self, needed) is None:
            raise ValueError(f"format '{self.format}' needs '{needed}'; add source.{needed} to the config")
        if self.format == "jdbc" and self.options:
            raise ValueError("format 'jdbc' takes its settings from source.jdbc; move source.options to "
                             "source.jdbc.properties")
        return self


class DatasetConfig(StrictModel):
    """Where the ingested dataset is published (relative paths are under the workdir)."""

    uri: str = "datasets/data"
    overwrite: bool = False
    partitions: int | None = Field(default=None, gt=0)
