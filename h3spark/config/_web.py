"""The ``web:`` section: the WebSocket bridge, its page, and the Downpour SGD master for browser workers.

    web:
      host: 127.0.0.1                      # loopback by default; behind a reverse proxy, see docs/web.md
      port: 8765                           # 0: any free port
      token_env: H3SPARK_WEB_TOKEN         # the token for writes comes from here, else one is drawn and printed
      network: run                         # run the actors: section here | join one running elsewhere | none
      predict_topic: web.draw              # drawn digits go here as raw records; actors predicting on it answer
      downpour:                            # browser windows train this MLP (Downpour SGD)
        model: {input_shape: [64], hidden: [64], classes: 10, init: {mean: 0.0, std: 0.1}}
        training: {optimizer: dcasgd, lr: 0.05, max_delay: 32, batch_size: 16, epochs: 20}
        data: {bundled: digits, holdout_fraction: 0.2, shards: 3}
        pipeline: {steps: [{kind: image, columns: [features], shape: [64]}]}

docs/web.md describes the protocol and every key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from h3spark.config._actors import TOPIC_PATTERN, ActorPipelineConfig, MlpShorthand, _problem
from h3spark.config._base import StrictModel

WEB_ACTIVATIONS = ("relu", "sigmoid", "tanh", "softrelu", "linear")


def _default_pipeline() -> ActorPipelineConfig:
    return ActorPipelineConfig(steps=[{"kind": "image", "columns": ["features"], "shape": [64]}])


class DownpourInitConfig(StrictModel):
    """The initial weights: normal(mean, std) for every dense weight (biases start at 0)."""

    mean: float = 0.0
    std: float = Field(default=0.1, gt=0)


class DownpourModelConfig(MlpShorthand):
    """The MLP the browser workers train: dense layers of ``hidden`` (``activation``), then ``classes`` logits,
    weights drawn from ``init``."""

    input_shape: list[int] = Field(default_factory=lambda: [64], min_length=1)
    hidden: list[int] = Field(default_factory=lambda: [64], min_length=1)
    classes: int = Field(default=10, ge=2)
    activation: Literal[WEB_ACTIVATIONS] = "relu"
    init: DownpourInitConfig = Field(default_factory=DownpourInitConfig)
    seed: int = Field(default=0, ge=0)


class DownpourTrainingConfig(StrictModel):
    """How pushed gradients are applied (on the master) and how workers step (their defaults; a page may
    change its own ``batch_size``, ``epochs``, ``n_fetch``, ``n_push``)."""

    optimizer: Literal["sgd", "dcasgd"] = "dcasgd"
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.0, ge=0, lt=1)
    dcasgd_lambda: float = Field(default=0.04, ge=0)
    weight_decay: float = Field(default=0.0, ge=0, description="L2, added to each pushed gradient")
    clip_norm: float = Field(default=0.0, ge=0, description="bound on a push's global gradient norm (0: off)")
    warmup_steps: int = Field(default=0, ge=0, description="updates over which the rate ramps up to lr")
    max_delay: int = Field(default=32, ge=0, description="pushes computed on weights older than this many "
                           "updates are refused")
    batch_size: int = Field(default=16, gt=0)
    epochs: int = Field(default=20, gt=0)
    n_fetch: int = Field(default=1, gt=0, description="steps between pulls of the weights")
    n_push: int = Field(default=1, gt=0, description="steps whose gradients are summed into one push")
    max_in_flight: int = Field(default=2, gt=0, description="pushes a worker sends before it waits for an ack")


class DownpourDataConfig(StrictModel):
    """The master's data: a dataset bundled with scikit-learn, split into held-out rows (scored by the master)
    and ``shards`` training shards handed to workers as they join."""

    bundled: str = "digits"
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    shards: int = Field(default=3, gt=0)
    seed: int = Field(default=0, ge=0)


class DownpourConfig(StrictModel):
    """The Downpour SGD master: it holds the parameters in the parameter store and applies the pushes."""

    name: str = Field(default="downpour", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                      description="its name on the actor network (reports, predictions)")
    model: DownpourModelConfig = Field(default_factory=DownpourModelConfig)
    training: DownpourTrainingConfig = Field(default_factory=DownpourTrainingConfig)
    data: DownpourDataConfig = Field(default_factory=DownpourDataConfig)
    pipeline: ActorPipelineConfig = Field(default_factory=_default_pipeline)
    eval_every_s: float = Field(default=0.5, gt=0, description="seconds between scores on the held-out rows")


class WebConfig(StrictModel):
    """The bridge: where it listens, who may write, its limits, what it follows on the actor network."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token_env: str = Field(default="H3SPARK_WEB_TOKEN", min_length=1)
    allowed_origins: list[str] = Field(default_factory=list, description="origins besides the bridge's own "
                                       "(e.g. https://example.org behind a reverse proxy)")
    max_message_bytes: int = Field(default=4 * 2**20, ge=1024)
    max_text_bytes: int = Field(default=64 * 1024, ge=256)
    max_messages_per_s: float = Field(default=400.0, gt=0)
    burst: int = Field(default=800, gt=0)
    push_hz: float = Field(default=20.0, gt=0, le=20, description="updates pushed to a page per second, at most")
    network: Literal["run", "join", "none"] = "run"
    predict_topic: str | None = "web.draw"
    follow: list[str] | None = Field(default=None, description="predictions topics to follow; default: every "
                                     "outputs.predictions and outputs.validation of the actors: section")
    request_timeout_s: float = Field(default=5.0, gt=0)
    downpour: DownpourConfig | None = None

    @model_validator(mode="after")
    def _topics(self) -> "WebConfig":
        for name, topic in [("predict_topic", self.predict_topic), *(("follow", t) for t in self.follow or [])]:
            if topic is not None and not TOPIC_PATTERN.match(topic):
                raise _problem(name, f"a topic name has 1 to 200 letters, digits, '.', '_' or '-'. Got {topic!r} instead.")
        for origin in self.allowed_origins:
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise _problem("allowed_origins", f"an origin is scheme://host[:port] with no path, e.g. "
                                                  f"https://example.org. Got {origin!r} instead.")
        return self
