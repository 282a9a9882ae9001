"""The ``gates:`` section: a model spec cut into gates (actors holding consecutive layers, each with its
own optimizer), the sentinels that feed them, and where they run.

    gates:
      engine: torch                        # torch | mxnet
      model:                               # a model spec, as training.model's
        input_shape: [1, 8, 8]
        layers: [...]
      cut:                                 # consecutive gates, by layer name, in order
        g1: [conv1, pool1]
        g2: [conv2, pool2]
        g3: [flat, hidden, logits]
      training: {optimizer: sgd, lr: 0.05, momentum: 0.9, batch_size: 32}
      compensation: stash                  # none | stash | dcasgd
      max_in_flight: 4                     # batches each training sentinel has in the pipeline at once
      data: {bundled: digits, scale: 0.0625, validation_fraction: 0.2, test_fraction: 0.2}
      sentinels:
        train-1: {kind: train, epochs: 5}
        train-2: {kind: train, epochs: 5}
        val: {kind: validation, every_s: 5}
        test: {kind: test}
      transport: memory                    # memory (one process) | kafka
      placement: auto                      # threads | processes | spark (auto: threads on memory, else processes)
      sentinel_placement: same             # same (as the gates) | threads (of the network's process)

The cut is checked against the spec when the network is built (h3spark.gates), since layer
names come from parsing the spec.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from h3spark.config._base import ERROR_AT, StrictModel
from h3spark.config._paths import escape_message, escapes_workdir
from h3spark.config._training import check_schedule, check_spec

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SENTINEL_KINDS = ("train", "validation", "test")


def _problem(at: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("gates", "{message}", {"message": message, ERROR_AT: at})


class GateTrainingConfig(StrictModel):
    """Each gate's optimizer (the model contract's training options) and the sentinels' batch size.
    A gate compensates delays itself (``compensation``), so the optimizer is sgd or adam."""

    batch_size: int = Field(default=32, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    clip_norm: float = Field(default=0.0, ge=0, description="per gate: the most its gradient's norm may be; 0: off")
    warmup_steps: int = Field(default=0, ge=0)
    schedule: Literal["constant", "step", "cosine"] = "constant"
    step_size: int = Field(default=1000, ge=1)
    gamma: float = Field(default=0.1, gt=0)
    total_steps: int = Field(default=0, ge=0)
    min_lr: float = Field(default=0.0, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.999, ge=0, lt=1)
    epsilon: float = Field(default=1e-8, gt=0)
    dcasgd_lambda: float = Field(default=0.04, ge=0, description="compensation dcasgd: the variance control lambda")

    @model_validator(mode="after")
    def _schedule_complete(self):
        check_schedule(self)
        return self


class GatesDataConfig(StrictModel):
    """The data: a dataset bundled with scikit-learn (``rows`` of it), its features times ``scale``, split
    once (with ``seed``) into training, validation and test rows; the training rows are cut into ``shards``
    (default: one per training sentinel of the config), one per training sentinel."""

    bundled: str = "digits"
    scale: float = Field(default=1.0, gt=0)
    validation_fraction: float = Field(default=0.2, ge=0, lt=1)
    test_fraction: float = Field(default=0.2, ge=0, lt=1)
    rows: int | None = Field(default=None, ge=1, description="use this many rows (drawn with seed) of the dataset; default all")
    shards: int | None = Field(default=None, ge=1)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _room_to_train(self) -> "GatesDataConfig":
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must leave rows to train on (sum < 1). "
                             f"Got {self.validation_fraction} + {self.test_fraction} instead")
        return self


class GateSentinelConfig(StrictModel):
    """A sentinel: ``train`` feeds its shard for ``epochs`` (forward and backward); ``validation``
    scores the validation rows every ``every_s`` seconds or every ``every_batches`` training batches
    (of all training sentinels together); ``test`` scores the test rows once training has ended.
    ``start: false`` declares one that joins later (GateNetwork.add_sentinel)."""

    kind: Literal[SENTINEL_KINDS]
    epochs: int | None = Field(default=None, ge=1, description="train: passes over its shard (default 1)")
    shard: int | None = Field(default=None, ge=0, description="train: its shard (default: its place among them)")
    every_s: float | None = Field(default=None, gt=0)
    every_batches: int | None = Field(default=None, ge=1)
    max_in_flight: int | None = Field(default=None, ge=1, description="default: gates.max_in_flight")
    start: bool = True

    @model_validator(mode="after")
    def _kind_rules(self) -> "GateSentinelConfig":
        if self.kind == "validation" and (self.every_s is None) == (self.every_batches is None):
            raise ValueError("a validation sentinel needs exactly one of every_s (seconds) or every_batches "
                             "(training batches), e.g. every_s: 5")
        if self.kind != "validation" and (self.every_s is not None or self.every_batches is not None):
            raise ValueError(f"every_s and every_batches are for validation sentinels; remove them from this {self.kind} "
                             "sentinel")
        if self.kind != "train" and (self.epochs is not None or self.shard is not None):
            raise ValueError(f"epochs and shard are for training sentinels; remove them from this {self.kind} sentinel")
        return self


class GatesConfig(StrictModel):
    """A network of gates and sentinels (see the module's docstring)."""

    engine: Literal["torch", "mxnet"] = "torch"
    model: dict[str, Any]
    cut: dict[str, list[str]] = Field(min_length=1)
    seed: int = Field(default=0, ge=0)
    training: GateTrainingConfig = Field(default_factory=GateTrainingConfig)
    compensation: Literal["none", "stash", "dcasgd"] = "stash"
    max_in_flight: int = Field(default=4, ge=1)
    data: GatesDataConfig = Field(default_factory=GatesDataConfig)
    sentinels: dict[str, GateSentinelConfig] = Field(min_length=1)
    transport: Literal["memory", "kafka"] = "memory"
    bootstrap_servers: str | None = None
    max_record_bytes: int = Field(default=1_000_000, ge=8192)
    placement: Literal["auto", "threads", "processes", "spark"] = "auto"
    sentinel_placement: Literal["same", "threads"] = Field(
        default="same", description="same: as the gates; threads: threads of the network's own process (light, "
        "and on Spark only the gates need task slots)")
    threads: int = Field(default=1, ge=0, description="math threads per gate process (torch); 0: the engine's default")
    dir: str = Field(default="gates", description="each process's settings and log, under the workdir")

    @field_validator("model")
    @classmethod
    def _spec_shapes(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        check_spec(value, "gates.model", info)
        return value

    @model_validator(mode="after")
    def _rules(self) -> "GatesConfig":
        for name in [*self.cut, *self.sentinels]:
            if not NAME_PATTERN.match(name):
                raise _problem(name, f"a gate or sentinel name has 1 to 64 letters, digits, '_' or '-', starting with "
                                     f"a letter or digit. Got {name!r} instead.")
        both = sorted(set(self.cut) & set(self.sentinels))
        if both:
            raise _problem(both[0], f"{both[0]!r} names both a gate and a sentinel; give them different names.")
        if not any(s.kind == "train" and s.start for s in self.sentinels.values()):
            raise _problem("sentinels", "the network needs a training sentinel that starts: {kind: train, epochs: N}.")
        for name, layers in self.cut.items():
            if not layers:
                raise _problem(f"cut.{name}", "a gate holds at least one layer: list its layer names.")
        if self.transport == "kafka" and not self.bootstrap_servers:
            raise _problem("bootstrap_servers", "the kafka transport needs bootstrap_servers, e.g. 127.0.0.1:9092.")
        if self.transport == "memory" and self.placement in ("processes", "spark"):
            raise _problem("placement", f"placement {self.placement!r} runs gates outside this process, where the "
                                        "in-process bus does not reach. Set transport: kafka, or placement: threads.")
        if escapes_workdir(self.dir):
            raise _problem("dir", escape_message(self.dir))
        return self

    @property
    def resolved_placement(self) -> str:
        """threads for the in-process bus, else the placement asked for (auto: processes)."""
        if self.placement != "auto":
            return self.placement
        return "threads" if self.transport == "memory" else "processes"
