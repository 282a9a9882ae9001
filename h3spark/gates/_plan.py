"""The plan of a gates network: the spec, its cut into gates, each gate's optimizer, the topics, and
the data each sentinel feeds (one split, one shard per training sentinel).

    >>> plan = GatePlan.from_config(config.gates, "gates_digits")
    >>> [(gate.name, gate.layers) for gate in plan.gates]
    [('g1', ('conv1', 'pool1')), ('g2', ('conv2', 'pool2')), ('g3', ('flat', 'hidden', 'logits'))]
    >>> plan.topics("3f2a").inbox("g2")
    'gates_digits.3f2a.g2'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from h3spark.config import GatesConfig
from h3spark.errors import ConfigError, DataError
from h3spark.ingest import load_bundled
from h3spark.train import train_options
from h3spark.train.engines.model import TrainOptions
from h3spark.train.engines.spec import ModelSpec


@dataclass(frozen=True)
class GateSpec:
    """One gate: its name, its layers, and its place in the pipeline."""

    name: str
    layers: tuple[str, ...]
    index: int


@dataclass(frozen=True)
class Topics:
    """The topic names of one run: each gate and sentinel reads its own inbox; everyone reports on ``status``."""

    prefix: str

    def inbox(self, role: str) -> str:
        return f"{self.prefix}.{role}"

    @property
    def status(self) -> str:
        return f"{self.prefix}.status"

    def group(self, role: str) -> str:
        return f"{self.prefix}.{role}"


@dataclass(frozen=True)
class GatePlan:
    """A checked ``gates:`` section: the spec, the gates in order, the optimizer's options."""

    config: GatesConfig
    network: str
    spec: ModelSpec
    gates: tuple[GateSpec, ...]
    options: TrainOptions

    @classmethod
    def from_config(cls, config: GatesConfig, network: str) -> GatePlan:
        """Parse the spec and check that the cut lists every layer once, consecutively, in order."""
        spec = ModelSpec.from_dict(config.model, where="gates.model")
        gates = tuple(GateSpec(name, tuple(layers), index) for index, (name, layers) in enumerate(config.cut.items()))
        _check_cut(spec, gates)
        return cls(config, network, spec, gates, train_options(config.training))

    def gate(self, name: str) -> GateSpec:
        for gate in self.gates:
            if gate.name == name:
                return gate
        raise ConfigError("gates.cut", [f"no gate {name!r}; the gates are {[gate.name for gate in self.gates]}."])

    def topics(self, run_id: str) -> Topics:
        return Topics(f"{self.network}.{run_id}")

    def training_sentinels(self) -> list[str]:
        """The training sentinels of the config, in order (their default shards)."""
        return [name for name, sentinel in self.config.sentinels.items() if sentinel.kind == "train"]

    def shard_of(self, name: str) -> tuple[int, int]:
        """(index, count) of the training shard sentinel ``name`` feeds."""
        names = self.training_sentinels()
        count = self.config.data.shards or len(names)
        index = self.config.sentinels[name].shard
        index = names.index(name) if index is None else index
        if index >= count:
            raise ConfigError(f"gates.sentinels.{name}.shard", [f"shard {index} does not exist: the training rows are "
                                                                f"cut into {count} shards (data.shards). Use 0..{count - 1}."])
        return index, count


def _check_cut(spec: ModelSpec, gates: tuple[GateSpec, ...]) -> None:
    names = [layer.name for layer in spec.layers]
    listed = [layer for gate in gates for layer in gate.layers]
    for gate in gates:
        unknown = [layer for layer in gate.layers if layer not in names]
        if unknown:
            raise ConfigError(f"gates.cut.{gate.name}", [f"no layer {unknown[0]!r} in gates.model; its layers are {names} "
                                                         "(unnamed layers are TYPE0, TYPE1, ...: name them in the spec)."])
    if listed != names:
        raise ConfigError("gates.cut", [f"the gates must hold every layer of the spec once, consecutively and in order: "
                                        f"{names}. The cut lists {listed}."])


@dataclass(frozen=True)
class Split:
    """Rows of one split: features (N, *input_shape) float32 and labels (N,) int64."""

    features: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def shard(self, index: int, count: int) -> Split:
        return Split(self.features[index::count], self.labels[index::count])


def load_splits(plan: GatePlan) -> dict[str, Split]:
    """The ``train``, ``validation`` and ``test`` rows of the configured data, the same in every process."""
    data = plan.config.data
    table = load_bundled(data.bundled)
    features = np.asarray(table.column("features").combine_chunks().flatten(), dtype=np.float32) * data.scale
    labels = np.asarray(table.column("label"), dtype=np.int64)
    rows = len(labels)
    if features.size != rows * plan.spec.features:
        raise DataError(f"the rows of {data.bundled} have {features.size // max(rows, 1)} values, but gates.model takes "
                        f"{plan.spec.features} ({plan.spec.input_shape}); set the spec's input_shape to match.")
    features = features.reshape((rows, *plan.spec.input_shape))
    order = np.random.default_rng(data.seed).permutation(rows)[:data.rows]
    tests, validations = int(round(len(order) * data.test_fraction)), int(round(len(order) * data.validation_fraction))
    parts = {"test": order[:tests], "validation": order[tests:tests + validations], "train": order[tests + validations:]}
    return {name: Split(features[index], labels[index]) for name, index in parts.items()}
