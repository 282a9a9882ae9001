"""Gates: a network whose layers are actors, trained asynchronously and pipelined.

A model spec is cut into gates (``gates:`` in the YAML), each an actor holding consecutive layers with
its own optimizer. Forward and backward passes are messages between them, over the in-process bus or
Kafka; sentinels feed the batches, compute the loss, and score the model while it trains.

    >>> from h3spark.gates import GateNetwork
    >>> result = GateNetwork.from_config(config, workdir, progress=print).run()
    train-1 epoch 1 loss 1.8721 acc 0.4213 3.1 s  versions g1 0-27 g2 0-28 g3 0-29
    >>> result.delay_percentile(50), result.final_score("test")["accuracy"]

- :class:`GatePlan`: the checked cut of the spec, the topics, the data splits (:func:`load_splits`).
- :class:`Gate`: one gate (a :class:`~h3spark.train.engines.stage.Stage` behind an inbox).
- :class:`TrainingSentinel`, :class:`ValidationSentinel`, :class:`TestSentinel`: the data's side.
- :class:`GateNetwork`: launches them (threads, processes or Spark tasks), follows them, changes
  the sentinels while it trains; :class:`GatesResult`: epochs, scores, delays, throughput.
- docs/gates.md describes the messages, the delay compensations and the placements.
"""

from h3spark.gates._gate import Gate
from h3spark.gates._launch import run_role
from h3spark.gates._network import GateNetwork
from h3spark.gates._plan import GatePlan, GateSpec, Split, Topics, load_splits
from h3spark.gates._report import GatesResult, epoch_line, score_line
from h3spark.gates._sentinel import Sentinel, TestSentinel, TrainingSentinel, ValidationSentinel, build_sentinel

__all__ = ["Gate", "GateNetwork", "GatePlan", "GateSpec", "GatesResult", "Sentinel", "Split", "TestSentinel",
           "Topics", "TrainingSentinel", "ValidationSentinel", "build_sentinel", "epoch_line", "load_splits",
           "run_role", "score_line"]
