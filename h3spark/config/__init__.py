"""Typed YAML configs (pydantic v2) and the line-aware loader."""

from h3spark.config._actors import ActorConfig, ActorsConfig, ProducerConfig
from h3spark.config._base import StrictModel
from h3spark.config._defaults import DEFAULT_WORKDIR
from h3spark.config._experiment import (
    LAYER_PREFIX,
    EarlyStoppingConfig,
    ExperimentConfig,
    ExperimentModelConfig,
    KafkaChannelConfig,
    layer_keys,
)
from h3spark.config._gates import GatesConfig, GateSentinelConfig
from h3spark.config._jdbc import DEFAULT_PASSWORD_ENV, JdbcConnectionConfig, JdbcSinkConfig, JdbcSourceConfig
from h3spark.config._loader import apply_overrides, load_config, parse_yaml, validate
from h3spark.config._paths import WORKDIR_PATHS, escape_message, escapes_workdir
from h3spark.config._predict import PredictConfig, PredictOutputConfig
from h3spark.config._preprocess import STEP_MODELS, PreprocessConfig, PreprocessStep
from h3spark.config._reference import REFERENCE_COMMAND, config_reference
from h3spark.config._root import H3SparkConfig
from h3spark.config._sections import DatasetConfig, SourceConfig, SparkConfig, StorageConfig, TrainingConfig
from h3spark.config._stream import StreamConfig
from h3spark.config._space import Choice, Domain, Float, Int, LogUniform, parse_space
from h3spark.config._training import OPTIMIZER_PARAMS, SPEC_CHECK
from h3spark.config._web import DownpourConfig, WebConfig

__all__ = [
    "ActorsConfig",
    "ActorConfig",
    "ProducerConfig",
    "StreamConfig",
    "WebConfig",
    "DownpourConfig",
    "GatesConfig",
    "GateSentinelConfig",
    "WORKDIR_PATHS",
    "escapes_workdir",
    "escape_message",
    "DEFAULT_WORKDIR",
    "Domain",
    "Int",
    "Float",
    "LogUniform",
    "Choice",
    "parse_space",
    "ExperimentConfig",
    "ExperimentModelConfig",
    "EarlyStoppingConfig",
    "KafkaChannelConfig",
    "PredictConfig",
    "PredictOutputConfig",
    "PreprocessConfig",
    "PreprocessStep",
    "STEP_MODELS",
    "StrictModel",
    "H3SparkConfig",
    "SparkConfig",
    "StorageConfig",
    "SourceConfig",
    "DatasetConfig",
    "DEFAULT_PASSWORD_ENV",
    "JdbcConnectionConfig",
    "JdbcSourceConfig",
    "JdbcSinkConfig",
    "TrainingConfig",
    "SPEC_CHECK",
    "OPTIMIZER_PARAMS",
    "LAYER_PREFIX",
    "layer_keys",
    "load_config",
    "parse_yaml",
    "apply_overrides",
    "validate",
    "config_reference",
    "REFERENCE_COMMAND",
]
