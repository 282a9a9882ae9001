"""Preprocessor and Worker: the two extension points of a pipeline.

A :class:`Worker` turns a block into a block (``transform(block)``). A
:class:`Preprocessor` is configured by parameters, asks for statistics of the whole
dataset (``statistics()``), learns its ``state_`` from them (``fit``) and then
transforms blocks with its workers. Parameters and state are plain JSON values, so a
fitted preprocessor is saved and reloaded without pickle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import ValidationError

from h3spark.config._preprocess import STEP_MODELS
from h3spark.errors import ConfigError, DataError
from h3spark.preprocess._block import Block

_REGISTRY: dict[str, type["Preprocessor"]] = {}
FLOAT32_MAX = float(np.finfo(np.float32).max)  # a larger number becomes inf in a float32 feature vector


class Worker(ABC):
    """One block -> block transform; reject bad rows with ``block.reject(mask, reason)``."""

    @abstractmethod
    def transform(self, block: Block) -> None:
        """Update ``block.table`` (with ``block.replace``) and reject bad rows."""


class Preprocessor(ABC):
    """A pipeline step: parameters, the statistics it needs, fitted state and workers.

    >>> scale = StandardScale(["age", "income"])
    >>> Pipeline([Impute(["age"]), scale]).fit(table).transform(table)
    """

    kind: ClassVar[str]

    def __init__(self, columns=None, **params: Any):
        self.params = ({"columns": columns} if columns is not None else {}) | params
        self.state_: dict | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "kind", None):
            _REGISTRY[cls.kind] = cls

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    @property
    def spec(self):
        """The validated parameters (raises ConfigError with sklearn-style sentences)."""
        try:
            return STEP_MODELS[self.kind].model_validate({"kind": self.kind, **self.params})
        except ValidationError as error:
            raise ConfigError(type(self).__name__, [_sentence(type(self).__name__, item) for item in error.errors()]) from None

    @property
    def name(self) -> str:
        return f"{self.kind}({', '.join(self.inputs())})"

    def inputs(self) -> list[str]:
        """Columns this step reads."""
        return list(self.spec.columns)

    def outputs(self) -> list[str]:
        """Columns this step writes (by default it replaces its inputs)."""
        return self.inputs()

    def statistics(self) -> list[tuple[str, str]]:
        """(column, kind) pairs of dataset statistics the fit needs; [] for a stateless step."""
        return []

    @property
    def needs_fit(self) -> bool:
        return bool(self.statistics())

    def fit_statistics(self, merged: dict) -> "Preprocessor":
        """Learn ``state_`` from merged statistics (see h3spark.preprocess._stats)."""
        self.state_ = self._fit(merged) if self.needs_fit else {}
        return self

    def _fit(self, merged: dict) -> dict:
        return {}

    def workers(self) -> list[Worker]:
        """The workers that transform a block, in order (needs a fitted state)."""
        if self.state_ is None:
            if self.needs_fit:
                raise DataError(f"{self.name} is not fitted; call Pipeline.fit first or load a fitted pipeline.")
            self.state_ = {}
        return self._workers()

    @abstractmethod
    def _workers(self) -> list[Worker]: ...

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": self.params, "state": self.state_}

    @staticmethod
    def from_dict(data: dict) -> "Preprocessor":
        kind = data.get("kind")
        if kind not in _REGISTRY:
            raise ConfigError("pipeline", [f"unknown step kind {kind!r}. Known kinds: {', '.join(sorted(_REGISTRY))}."])
        step = _REGISTRY[kind](**data.get("params", {}))
        step.state_ = data.get("state")
        return step


def preprocessor_for(step_model) -> Preprocessor:
    """A preprocessor from a validated config step (``preprocess.steps[i]``)."""
    return _REGISTRY[step_model.kind](**step_model.model_dump(exclude={"kind"}, exclude_defaults=True))


def _sentence(owner: str, item: dict) -> str:
    loc = [part for part in item["loc"] if isinstance(part, str)]
    name = loc[0] if loc else "params"
    message = item["msg"].removeprefix("Value error, ").removeprefix("Input should be ").rstrip(".")
    if item["type"] == "extra_forbidden":
        return f"{owner} has no parameter '{name}'. Known parameters: {', '.join(STEP_MODELS[_kind(owner)].model_fields)}."
    if item["type"] == "missing":
        return f"The '{name}' parameter of {owner} is required."
    return f"The '{name}' parameter of {owner} must be {message}. Got {item.get('input')!r} instead."


def _kind(owner: str) -> str:
    return next(kind for kind, cls in _REGISTRY.items() if cls.__name__ == owner)


class ColumnWorker(Worker):
    """A worker applying ``fn(name, column, block) -> column`` to each of its columns."""

    def __init__(self, columns: list[str], fn):
        self.columns, self.fn = columns, fn

    def transform(self, block: Block) -> None:
        for name in self.columns:
            table = block.table
            column = self.fn(name, column_of(table, name, block.step), block)
            block.replace(block.table.set_column(block.table.schema.get_field_index(name), name, column))


def column_of(table: pa.Table, name: str, step: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise DataError(f"step {step} reads column {name!r}, which is not in the data; it has "
                        f"{', '.join(table.column_names)}. Check the step's columns (and earlier steps' outputs).")
    return table.column(name)


def is_numeric(column) -> bool:
    return pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)


def floats(column, name: str, step: str) -> np.ndarray:
    """float64 values with NaN for nulls; a DataError for non-numeric columns."""
    if not is_numeric(column):
        raise DataError(f"step {step} needs numbers in column {name!r}, which is {column.type}. "
                        f"Add a cast step before it: {{kind: cast, columns: {{{name}: float32}}}}.")
    if pa.types.is_floating(column.type):
        return pc.fill_null(column, float("nan")).to_numpy().astype(np.float64, copy=False)
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


def vectors(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """A (rows, width) float32 matrix as a fixed-size list column."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
