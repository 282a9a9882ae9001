"""The ``stream:`` section: a Spark Structured Streaming job that applies a fitted pipeline to a raw topic.

    stream:
      bootstrap_servers: 127.0.0.1:9092
      input: digits.raw                    # raw messages (as 'h3spark actors produce' writes them) or plain text
      output: digits.features              # features messages, as actors read them
      pipeline: {uri: datasets/digits}     # a fitted pipeline: a preprocessed dataset's, or a file's
      trigger_s: 1.0

Paths (``dir``, the pipeline's ``uri``/``file``) are relative to the workdir unless absolute.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from h3spark.config._actors import NAME_PATTERN, ActorPipelineConfig, _check_path, _check_topic, _problem
from h3spark.config._base import StrictModel


class StreamConfig(StrictModel):
    """Applies a fitted pipeline to the records of ``input`` in micro-batches and publishes the feature rows to
    ``output`` as actor ``features`` messages; rows the pipeline refuses go to the quarantine
    (``DIR/NAME/quarantine``), Spark's progress to ``DIR/NAME/checkpoint`` (a restarted job reads on from there)."""

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    input: str = Field(description="the raw topic")
    output: str = Field(description="the features topic")
    pipeline: ActorPipelineConfig = Field(description="the fitted pipeline: uri or file (steps are refused)")
    text_format: Literal["csv", "json"] = Field(default="json", description="records that arrive as plain text, one "
                                                "per Kafka message (not an h3spark raw message)")
    columns: list[str] | None = Field(default=None, min_length=1, description="the CSV columns of plain-text records")
    sender: str | None = Field(default=None, description="the sender of the features messages; default: the config's "
                               "name")
    rows_per_message: int = Field(default=256, gt=0, description="feature rows per message at most")
    max_record_bytes: int = Field(default=1_000_000, ge=8192, description="a longer message travels as chunks")
    dir: str = Field(default="streams", description="checkpoint and quarantine, under the workdir")
    trigger_s: float = Field(default=1.0, gt=0, description="seconds between micro-batches")
    starting_offsets: Literal["earliest", "latest"] = Field(default="earliest", description="where a new job starts "
                                                            "(a restarted one reads on from its checkpoint)")
    max_offsets_per_trigger: int | None = Field(default=None, gt=0, description="Kafka records per micro-batch at most")
    end_marker: bool = Field(default=False, description="publish an end marker to output when the job stops, so "
                             "actors with stop_at_end stop")

    @model_validator(mode="after")
    def _rules(self) -> "StreamConfig":
        _check_topic(self.input, "input")
        _check_topic(self.output, "output")
        if self.input == self.output:
            raise _problem("output", f"the features need a topic of their own; output is the input topic "
                                     f"{self.input!r}. Set stream.output to another topic.")
        if self.pipeline.steps is not None:
            raise _problem("pipeline", "a streaming job applies a fitted pipeline; give pipeline.uri (a preprocessed "
                                       "dataset) or pipeline.file (a fitted pipeline's JSON) instead of steps.")
        if self.text_format == "csv" and not self.columns:
            raise _problem("columns", "plain-text CSV records need their column names: set stream.columns "
                                      "(e.g. [label, pixel_0, ...]), or text_format: json.")
        if self.sender is not None and not NAME_PATTERN.match(self.sender):
            raise _problem("sender", f"a sender has 1 to 64 letters, digits, '_' or '-', starting with a letter or "
                                     f"digit. Got {self.sender!r} instead.")
        _check_path(self.dir, "dir")
        return self
