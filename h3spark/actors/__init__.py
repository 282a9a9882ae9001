"""Actors exchange envelopes over a transport.

    >>> from h3spark.actors import Envelope, MemoryBus
    >>> bus = MemoryBus()
    >>> bus.publish("weights", Envelope("parameters", "teacher", model_version=300, arrays=weights))
    >>> subscription = bus.subscribe(["weights"], "student", lambda envelope, delivery: load(envelope.arrays))
    >>> subscription.poll()
    1

- :class:`Envelope`, :func:`encode`, :func:`decode`: the versioned binary message format
  (docs/actors.md describes it byte by byte); decode refuses with an EnvelopeError.
- :func:`split`, :class:`Reassembler`: messages over a topic's record limit travel as chunks.
- :class:`Transport`: the contract; :class:`MemoryBus` (in-process, the default) and
  :class:`KafkaTransport` implement it, and the same contract tests run against both.
- :func:`measure_codec`: the envelope's speed (GB/s) and size over the raw bytes.
- :class:`Actor`: a model with its own fitted pipeline, one handler per message kind (train online,
  predict, evaluate, load parameters, obey commands), snapshots; :class:`Network` runs the actors of
  an ``actors:`` section (threads, processes or Spark tasks) and changes them while it runs;
  :func:`produce` writes raw records (CSV lines or JSON) to a topic; :func:`run_stream` (a Spark Structured
  Streaming job) applies a fitted pipeline to such a topic and publishes the feature rows to another.
- :func:`run_distillation`, :func:`run_transfer`, :func:`run_sentinel`: the showcases (conf/actors_distill*.yaml,
  actors_transfer*.yaml, actors_sentinel.yaml) run and measured; :class:`Sentinel` scores another actor's weights.
"""

from h3spark.actors._actor import Actor, PredictionsHook, hard_targets
from h3spark.actors._batches import OnlineBatches
from h3spark.actors._chunks import Reassembler, split
from h3spark.actors._distill import distill_from_predictions
from h3spark.actors._control import command, control_topic, end_marker, status_topic
from h3spark.actors._envelope import KINDS, SCHEMA_VERSION, Envelope, decode, encode, new_message_id
from h3spark.actors._intake import Intake
from h3spark.actors._kafka import KafkaTransport
from h3spark.actors._measure import measure_codec
from h3spark.actors._memory import MemoryBus
from h3spark.actors._network import Network, NetworkResult
from h3spark.actors._producer import ProduceResult, produce, run_producer, source_records
from h3spark.actors._records import features_envelope, raw_envelope, records_table
from h3spark.actors._sentinel import Sentinel
from h3spark.actors._showcases import (DistillationResult, SentinelResult, TransferResult, distillation_robustness,
                                       run_distillation, run_network, run_sentinel, run_transfer)
from h3spark.actors._snapshot import Snapshot, Snapshots
from h3spark.actors._stream import StreamJob, StreamResult, run_stream
from h3spark.actors._stream_batch import BlockResult, StreamSettings, apply_block
from h3spark.actors._source import Delivery, ReceiveConfig, Record, SeenIds, SubscriptionStats
from h3spark.actors._subscription import Subscription
from h3spark.actors._transport import Transport

__all__ = ["KINDS", "SCHEMA_VERSION", "Delivery", "Envelope", "KafkaTransport", "MemoryBus", "Reassembler",
           "ReceiveConfig", "Record", "SeenIds", "Subscription", "SubscriptionStats", "Transport", "decode", "encode",
           "measure_codec", "new_message_id", "split",
           "Actor", "PredictionsHook", "hard_targets", "distill_from_predictions", "Sentinel",
           "DistillationResult", "SentinelResult", "TransferResult", "distillation_robustness", "run_distillation",
           "run_network", "run_sentinel", "run_transfer",
           "OnlineBatches", "Intake", "Network", "NetworkResult",
           "ProduceResult", "produce", "run_producer", "source_records", "features_envelope", "raw_envelope",
           "records_table", "Snapshot", "Snapshots", "StreamJob", "StreamResult", "run_stream", "BlockResult",
           "StreamSettings", "apply_block", "command", "control_topic", "end_marker", "status_topic"]
