"""The ``actors:`` section: a network of models as actors, the producers that feed it, and its transport.

    actors:
      transport: kafka                     # memory (one process) | kafka
      bootstrap_servers: 127.0.0.1:9092
      producers:
        digits:                            # raw records (CSV lines or JSON) to a topic
          source: {bundled: digits}
          topic: digits.raw
          format: json
          epochs: 3
          holdout_fraction: 0.2            # sent once, after the epochs, marked split=holdout
      actors:
        learner:
          inputs: {digits.raw: train}      # TOPIC: train | predict | evaluate
          model: {engine: numpy, mlp: {input_shape: [64], hidden: [64], classes: 10}}
          training: {optimizer: adam, lr: 0.01, batch_size: 32}
          pipeline:                        # fitted on the first fit_rows records it receives
            steps: [{kind: image, columns: [features], shape: [64]}]
            fit_rows: 256
          outputs: {parameters: learner.weights}
          publish_parameters: {every_steps: 50}

Paths (``dir``, a model's ``file``/``experiment``/``checkpoint``, a pipeline's ``uri``/``file``, a
producer's ``source.path``) are relative to the workdir unless absolute. A spec's shapes are
checked as ``training.model``'s are (through the validation context the CLI passes).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from h3spark.config._base import ERROR_AT, StrictModel
from h3spark.config._paths import escape_message, escapes_workdir
from h3spark.config._preprocess import CAST_TYPES, PreprocessStep
from h3spark.config._training import check_schedule, check_spec

TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
INPUT_USES = ("train", "predict", "evaluate")
MODEL_SOURCES = ("spec", "mlp", "file", "experiment", "checkpoint")


def _problem(at: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("actors", "{message}", {"message": message, ERROR_AT: at})


def _check_topic(value: str | None, at: str) -> None:
    if value is not None and not TOPIC_PATTERN.match(value):
        raise _problem(at, f"a topic name has 1 to 200 letters, digits, '.', '_' or '-'. Got {value!r} instead.")


def _check_path(value: str | None, at: str) -> None:
    if isinstance(value, str) and escapes_workdir(value):
        raise _problem(at, escape_message(value))


class MlpShorthand(StrictModel):
    """``mlp``: flatten, dense layers of ``hidden`` (relu), then ``classes`` logits."""

    input_shape: list[int] = Field(min_length=1)
    hidden: list[int] = Field(default_factory=lambda: [64], min_length=1)
    classes: int = Field(ge=2)
    dropout: float = Field(default=0.0, ge=0, lt=1)

    @field_validator("input_shape", "hidden")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if not all(size >= 1 for size in value):
            raise ValueError(f"must hold sizes >= 1. Got {value} instead")
        return value


class ActorModelConfig(StrictModel):
    """Where an actor's model comes from: exactly one of ``spec``, ``mlp``, ``file`` (saved by
    Model.save), ``experiment`` (its best_model/), ``checkpoint`` (a folder holding a saved model:
    a training checkpoint or an actor's snapshot dir, the newest taken)."""

    engine: Literal["numpy", "mxnet", "torch"] = "numpy"
    spec: dict[str, Any] | None = None
    mlp: MlpShorthand | None = None
    file: str | None = None
    experiment: str | None = None
    checkpoint: str | None = None
    seed: int = Field(default=0, ge=0)

    @field_validator("spec")
    @classmethod
    def _spec_shapes(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if value is not None:
            check_spec(value, "model.spec", info)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "ActorModelConfig":
        given = [name for name in MODEL_SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(MODEL_SOURCES)} for the model. Got "
                             f"{', '.join(given) if given else 'none'} instead")
        for key in ("file", "experiment", "checkpoint"):
            _check_path(getattr(self, key), key)
        return self

    @property
    def source(self) -> str:
        return next(name for name in MODEL_SOURCES if getattr(self, name) is not None)


class ActorTrainingConfig(StrictModel):
    """How an actor trains online: its minibatch size and the model contract's training options."""

    batch_size: int = Field(default=32, gt=0)
    optimizer: Literal["sgd", "adam", "dcasgd"] = "adam"
    lr: float = Field(default=0.01, gt=0)
    momentum: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    clip_norm: float = Field(default=0.0, ge=0)
    warmup_steps: int = Field(default=0, ge=0)
    schedule: Literal["constant", "step", "cosine"] = "constant"
    step_size: int = Field(default=1000, ge=1)
    gamma: float = Field(default=0.1, gt=0)
    total_steps: int = Field(default=0, ge=0)
    min_lr: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _schedule_complete(self):
        check_schedule(self)
        return self


class ActorPipelineConfig(StrictModel):
    """The actor's fitted preprocessing pipeline, applied to the raw records it receives: exactly one of
    ``uri`` (a preprocessed dataset: the pipeline in its manifest), ``file`` (a fitted pipeline's JSON) or
    ``steps`` (fitted on the first ``fit_rows`` records the actor receives). ``types`` parse raw fields
    (a CSV field is text, read as ``csv_default_type`` unless named here); a record whose field does not
    parse, or a line that is not a record, goes to the quarantine."""

    uri: str | None = None
    file: str | None = None
    steps: list[PreprocessStep] | None = Field(default=None, min_length=1)
    features: str = "features"
    label: str | None = "label"
    fit_rows: int = Field(default=256, gt=0, description="steps: records held back to fit the pipeline on")
    types: dict[str, Literal[CAST_TYPES]] = Field(default_factory=dict)
    csv_default_type: Literal["float64", "float32", "int64", "string"] = "float64"

    @model_validator(mode="after")
    def _one_source(self) -> "ActorPipelineConfig":
        given = [name for name in ("uri", "file", "steps") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of uri, file or steps for the pipeline. Got "
                             f"{', '.join(given) if given else 'none'} instead")
        _check_path(self.uri, "uri")
        _check_path(self.file, "file")
        return self


class ActorOutputsConfig(StrictModel):
    """Topics an actor publishes to (``validation``: a sentinel's results)."""

    predictions: str | None = None
    parameters: str | None = None
    validation: str | None = None

    @model_validator(mode="after")
    def _topics(self) -> "ActorOutputsConfig":
        _check_topic(self.predictions, "predictions")
        _check_topic(self.parameters, "parameters")
        _check_topic(self.validation, "validation")
        return self

    def ended_at_stop(self) -> list[str]:
        """The topics whose stream the actor ends (an end marker) when it stops: predictions and parameters."""
        return [topic for topic in (self.predictions, self.parameters) if topic is not None]


class DistillConfig(StrictModel):
    """Learn other actors' predictions with Hinton et al.'s loss at the sender's temperature: ``alpha`` of it on
    the soft targets, ``1 - alpha`` on the labels the predictions carry (when ``labels`` is on and they do)."""

    alpha: float = Field(default=0.9, ge=0, le=1)
    labels: bool = True


class SentinelConfig(StrictModel):
    """A validation sentinel: rows of its other inputs (used to evaluate) are its validation set; the weights
    arriving on ``parameters`` (one of its inputs) are scored on it, at most once per ``every_s`` seconds
    (0: every message; the newest waiting one otherwise), each result stamped with the weights' model version."""

    parameters: str
    every_s: float = Field(default=0.0, ge=0)
    max_rows: int = Field(default=100_000, gt=0, description="validation rows kept (the first ones)")


class PublishParametersConfig(StrictModel):
    """Publish the model's weights (of ``layers``; all when unset) every ``every_steps`` training steps
    and when the actor stops, to ``outputs.parameters``."""

    every_steps: int = Field(default=0, ge=0, description="0: only when the actor stops")
    layers: list[str] | None = None


class AcceptParametersConfig(StrictModel):
    """Load weights that other actors publish (transfer): those of ``layers`` (all the message holds when
    unset), from ``senders`` (anyone when unset); ``freeze`` stops training the layers loaded."""

    layers: list[str] | None = None
    senders: list[str] | None = None
    freeze: bool = False


class ActorConfig(StrictModel):
    """One actor: its inputs (topic -> use), model, training, pipeline, outputs and lifecycle."""

    inputs: dict[str, Literal[INPUT_USES]] = Field(default_factory=dict)
    model: ActorModelConfig
    training: ActorTrainingConfig = Field(default_factory=ActorTrainingConfig)
    pipeline: ActorPipelineConfig | None = None
    outputs: ActorOutputsConfig = Field(default_factory=ActorOutputsConfig)
    temperature: float = Field(default=1.0, gt=0, description="predictions: softmax(logits / temperature)")
    include_inputs: bool = Field(default=False, description="predictions carry the features (and labels) predicted on")
    publish_parameters: PublishParametersConfig | None = None
    accept_parameters: AcceptParametersConfig | None = None
    distill: DistillConfig | None = None
    sentinel: SentinelConfig | None = None
    snapshot_every_steps: int = Field(default=0, ge=0, description="0: snapshot only when stopped or asked")
    stop_at_end: bool = Field(default=True, description="stop once every input topic delivered its end marker")
    max_steps: int | None = Field(default=None, gt=0)
    start: bool = Field(default=True, description="false: declared here, joins later with 'h3spark actors add'")
    group: str | None = Field(default=None, description="consumer group; default NETWORK.ACTOR")

    @model_validator(mode="after")
    def _rules(self) -> "ActorConfig":
        for topic in self.inputs:
            _check_topic(topic, f"inputs.{topic}")
        if self.publish_parameters is not None and self.outputs.parameters is None:
            raise _problem("publish_parameters", "publishing parameters needs a topic: set outputs.parameters.")
        _check_sentinel(self)
        predicts = any(use == "predict" for use in self.inputs.values())
        if predicts and self.outputs.predictions is None:
            raise _problem("outputs", "an input used to predict needs a topic for the predictions: set "
                                      "outputs.predictions.")
        return self


def _check_sentinel(config: ActorConfig) -> None:
    sentinel = config.sentinel
    if sentinel is None:
        return
    if sentinel.parameters not in config.inputs:
        raise _problem("sentinel.parameters", f"the sentinel follows the weights on {sentinel.parameters!r}; list that "
                                              "topic in inputs too (inputs: {TOPIC: evaluate}).")
    training = sorted(topic for topic, use in config.inputs.items() if use != "evaluate")
    if training or config.accept_parameters is None or config.distill is not None:
        raise _problem("sentinel", "a sentinel only evaluates: give every input the use evaluate (not "
                                   f"{', '.join(training) or 'train'}), set accept_parameters (e.g. {{senders: [learner]}}) "
                                   "and no distill.")


class ProducerSourceConfig(StrictModel):
    """Records to produce: a dataset bundled with scikit-learn (``bundled``), or a local file (``path``) of
    CSV lines (a header first) or JSON lines."""

    bundled: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "ProducerSourceConfig":
        if (self.bundled is None) == (self.path is None):
            raise ValueError("give exactly one of bundled (e.g. digits) or path (a CSV or JSON-lines file)")
        _check_path(self.path, "path")
        return self


class ProducerConfig(StrictModel):
    """Writes raw records to ``topic``: ``epochs`` shuffled passes over the source (less the held-out
    part), then the held-out records once (marked ``split: holdout``), then an end marker."""

    source: ProducerSourceConfig
    topic: str
    format: Literal["csv", "json"] = "json"
    records_per_message: int = Field(default=64, gt=0)
    epochs: int = Field(default=1, ge=1)
    holdout_fraction: float = Field(default=0.0, ge=0, lt=1)
    train_range: list[int] | None = Field(default=None, min_length=2, max_length=2, description="[start, stop]: send "
                                          "only those training records (of the seeded shuffle, after the held-out part "
                                          "is set aside; the same held-out part whatever the range)")
    seed: int = Field(default=0, ge=0)
    rate_per_s: float | None = Field(default=None, gt=0, description="records per second; unset: as fast as it can")
    end: bool = Field(default=True, description="publish an end marker after the last record")
    start: bool = Field(default=True, description="false: run it alone with 'h3spark actors produce'")

    @model_validator(mode="after")
    def _topic(self) -> "ProducerConfig":
        _check_topic(self.topic, "topic")
        if self.train_range is not None and not 0 <= self.train_range[0] <= self.train_range[1]:
            raise _problem("train_range", f"train_range is [start, stop] with 0 <= start <= stop. Got {self.train_range} "
                                          "instead.")
        return self


class ActorsConfig(StrictModel):
    """A network of actors. ``launcher``: threads (one process, the memory transport), processes (one
    per actor on this machine) or spark (each a long-running Spark task); auto picks threads for the
    memory transport, spark when spark.master names a cluster, else processes."""

    transport: Literal["memory", "kafka"] = "memory"
    bootstrap_servers: str | None = None
    max_record_bytes: int = Field(default=1_000_000, ge=8192)
    launcher: Literal["auto", "threads", "processes", "spark"] = "auto"
    dir: str = Field(default="actors", description="state, snapshots and quarantine, under the workdir")
    progress_s: float = Field(default=5.0, gt=0, description="seconds between progress lines (and reports)")
    producers: dict[str, ProducerConfig] = Field(default_factory=dict)
    actors: dict[str, ActorConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _rules(self) -> "ActorsConfig":
        for name in [*self.actors, *self.producers]:
            if not NAME_PATTERN.match(name):
                raise _problem(name, f"an actor or producer name has 1 to 64 letters, digits, '_' or '-', starting "
                                     f"with a letter or digit. Got {name!r} instead.")
        both = sorted(set(self.actors) & set(self.producers))
        if both:
            raise _problem(both[0], f"{both[0]!r} names both an actor and a producer; give them different names.")
        if self.transport == "kafka" and not self.bootstrap_servers:
            raise _problem("bootstrap_servers", "the kafka transport needs bootstrap_servers, e.g. 127.0.0.1:9092.")
        if self.transport == "memory" and self.launcher in ("processes", "spark"):
            raise _problem("launcher", f"launcher {self.launcher!r} runs actors outside this process, where the "
                                       "in-process bus does not reach. Set transport: kafka, or launcher: threads.")
        _check_path(self.dir, "dir")
        return self
