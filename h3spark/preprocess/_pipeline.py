"""Pipeline: an ordered list of preprocessors, fitted on the whole dataset, applied per block.

    >>> pipeline = Pipeline([Impute(["x"]), StandardScale(["x"]), Assemble(["x"])], label="y")
    >>> pipeline.fit(table)                  # a pyarrow.Table here, a Spark DataFrame on a cluster
    >>> result = pipeline.transform(table)   # result.table, result.quarantine
    >>> Pipeline.from_json(pipeline.to_json()).transform(table)   # the same rows, no Spark needed

The fit runs one analysis pass per *depth*: consecutive steps that do not read a
column written by another step of the same depth are fitted together, from one scan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import ConfigError, DataError
from h3spark.preprocess._base import Preprocessor
from h3spark.preprocess._block import Block, reject_unreadable
from h3spark.preprocess._stats import ROWS_KEY, merge_partials, partial_stats

FORMAT = "h3spark.pipeline/1"


@dataclass
class TransformResult:
    """A transformed block: the good rows, the quarantined ones and the count of rows in."""

    table: pa.Table
    quarantine: pa.Table
    rows_in: int


class Pipeline:
    """Preprocessors run in order; ``features`` and ``label`` name the output columns."""

    def __init__(self, steps: list[Preprocessor], features: str = "features", label: str | None = "label",
                 keep: list[str] | tuple[str, ...] = ()):
        self.steps, self.features, self.label, self.keep = list(steps), features, label, list(keep)
        self.rows_fitted_: int | None = None  # input rows the (first) fit scan read; None when nothing was fitted

    def __repr__(self) -> str:
        return f"Pipeline({self.steps!r}, features={self.features!r}, label={self.label!r})"

    @property
    def is_fitted(self) -> bool:
        return all(step.state_ is not None or not step.needs_fit for step in self.steps)

    def depths(self) -> list[list[int]]:
        """Step indices grouped by fit depth (the steps fitted from one scan)."""
        self._validate()
        groups: list[list[int]] = [[]]
        written: set[str] = set()
        for index, step in enumerate(self.steps):
            if set(step.inputs()) & written or (step.needs_fit and not step.inputs()):
                groups.append([])
                written = set()
            groups[-1].append(index)
            written |= set(step.outputs())
        return [group for group in groups if group]

    def _validate(self) -> None:
        if not self.steps:
            raise ConfigError("Pipeline", ["The 'steps' parameter of Pipeline must be a non-empty list. Got [] instead."])
        for step in self.steps:
            if not isinstance(step, Preprocessor):
                raise ConfigError("Pipeline", [f"The 'steps' parameter of Pipeline must hold Preprocessor objects. "
                                               f"Got {type(step).__name__} instead."])
            step.spec  # noqa: B018 - validates the step's parameters once, at fit

    def fit(self, data, strict: bool = False) -> "Pipeline":
        """Fit on a pyarrow.Table (here), or distributed, one scan per depth: a Spark DataFrame, or
        :class:`h3spark.ingest.ParquetTasks` (tasks that read Parquet row groups themselves)."""
        if isinstance(data, pa.Table):
            return self.fit_blocks([data], strict)
        from h3spark.preprocess._spark import fit_distributed

        return fit_distributed(self, data, strict)

    def fit_blocks(self, tables: list[pa.Table], strict: bool = False, gather=lambda partial: [partial]) -> "Pipeline":
        """Fit on blocks held here; ``gather(partial)`` returns every task's partial (a barrier allGather)."""
        return self._fit_with(lambda prefix, requests: gather(
            merge_partials([self.partial(table, prefix, requests, strict) for table in tables])))

    def _fit_with(self, compute_partials) -> "Pipeline":
        self.rows_fitted_ = None
        for group in self.depths():
            fitting = [self.steps[index] for index in group if self.steps[index].needs_fit]
            if not fitting:
                continue
            requests = sorted({request for step in fitting for request in step.statistics()})
            merged = merge_partials(compute_partials(group[0], requests))
            if self.rows_fitted_ is None:
                self.rows_fitted_ = merged.get(ROWS_KEY, 0)
            for step in fitting:
                step.fit_statistics(merged)
        for step in self.steps:
            if not step.needs_fit:
                step.state_ = {}
        return self

    def partial(self, table: pa.Table, prefix: int, requests, strict: bool = False) -> dict:
        """Statistics of one block after the first ``prefix`` steps (what a Spark task computes)."""
        block = self.start_block(table, strict)
        self.run_steps(block, self.steps[:prefix])
        return partial_stats(block.table, requests) | {ROWS_KEY: block.rows_in}

    def start_block(self, table: pa.Table, strict: bool = False) -> Block:
        """A block of input rows; rows a reader could not read faithfully go to quarantine first."""
        block = Block.of(table, strict=strict)
        reject_unreadable(block)
        return block

    @staticmethod
    def run_steps(block: Block, steps: list[Preprocessor]) -> None:
        for step in steps:
            block.step = step.name
            for worker in step.workers():
                worker.transform(block)

    def transform(self, table: pa.Table, strict: bool = False) -> TransformResult:
        """Transform one block; the result holds the output columns and the quarantined rows."""
        if not self.is_fitted:
            raise DataError("the pipeline is not fitted; call fit(data) first or load a fitted pipeline.")
        block = self.start_block(table, strict)
        self.run_steps(block, self.steps)
        self._finish(block)
        return TransformResult(block.table, block.quarantine_table(), block.rows_in)

    def _finish(self, block: Block) -> None:
        block.step = "output"
        names = block.table.column_names
        wanted = [self.features] + ([self.label] if self.label else []) + self.keep
        wanted += [name for name in self.split_columns() if name not in wanted]
        missing = [name for name in wanted if name not in names]
        if missing:
            raise DataError(f"the pipeline's output lacks {', '.join(repr(m) for m in missing)}; it has {', '.join(names)}. "
                            "Add an assemble step (output: features), or set preprocess.features / label / keep.")
        if self.label:
            block.reject(pc.is_null(block.table.column(self.label), nan_is_null=True).to_numpy(zero_copy_only=False),
                         f"missing label {self.label!r}")
        column = block.table.column(self.features)
        if not pa.types.is_fixed_size_list(column.type):
            from h3spark.preprocess._vectors import list_matrix, vectors

            fixed = vectors(list_matrix(column, None, self.features, block))
            block.replace(block.table.set_column(block.table.schema.get_field_index(self.features), self.features, fixed))
        block.replace(block.table.select(wanted))

    def split_columns(self) -> list[str]:
        return [step.spec.column for step in self.steps if step.kind == "split"]

    def to_dict(self) -> dict:
        return {"format": FORMAT, "features": self.features, "label": self.label, "keep": self.keep,
                "steps": [step.to_dict() for step in self.steps]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False, default=_plain)

    @classmethod
    def from_dict(cls, data: dict) -> "Pipeline":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError("pipeline", [f"not an h3spark pipeline (format must be {FORMAT!r}). "
                                           f"Got {data.get('format') if isinstance(data, dict) else type(data).__name__!r} instead."])
        steps = [Preprocessor.from_dict(step) for step in data["steps"]]
        return cls(steps, features=data["features"], label=data["label"], keep=data.get("keep", []))

    @classmethod
    def from_json(cls, text: str) -> "Pipeline":
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, dataset_uri: str) -> "Pipeline":
        """The fitted pipeline saved in a dataset's manifest (no Spark needed)."""
        from h3spark.storage import read_manifest

        manifest = read_manifest(dataset_uri)
        if not manifest.get("pipeline"):
            raise DataError(f"{dataset_uri} was not written by a preprocessing pipeline (its manifest has no 'pipeline').")
        return cls.from_dict(manifest["pipeline"])


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
