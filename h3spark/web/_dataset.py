"""The Downpour master's data: a bundled dataset through the master's fitted pipeline, held-out rows
and training shards; and raw rows a worker's user supplies, preprocessed by the same pipeline.

    >>> data = MasterData.from_config(config.web.downpour, workdir)
    >>> features, labels = data.shard(0)                 # preprocessed rows for a worker
    >>> features, labels, refused = data.preprocess(raw_pixels, labels)   # a user's own examples
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from h3spark.actors import Intake
from h3spark.config import DownpourConfig
from h3spark.errors import DataError
from h3spark.ingest import load_bundled
from h3spark.serve import for_prediction

logger = logging.getLogger(__name__)


def rows_table(features: np.ndarray, labels: np.ndarray | None = None) -> pa.Table:
    """Raw rows as a bundled dataset's table: ``features`` list<float32> and ``label`` int64."""
    flat = np.ascontiguousarray(features, dtype=np.float32).reshape(len(features), -1)
    offsets = np.arange(0, flat.size + 1, max(flat.shape[1], 1), dtype=np.int32)[:len(flat) + 1]
    columns = {"features": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.reshape(-1)))}
    if labels is not None:
        columns["label"] = pa.array(np.asarray(labels, dtype=np.int64))
    return pa.table(columns)


def table_rows(table: pa.Table, features: str, label: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The (n, width) float32 features and (n,) int64 labels (None without a label column) of a table."""
    column = table.column(features).combine_chunks()
    flat = np.asarray(column.flatten(), dtype=np.float32)
    rows = flat.reshape(table.num_rows, -1) if table.num_rows else flat.reshape(0, 0)
    labels = np.asarray(table.column(label), dtype=np.int64) if label and label in table.column_names else None
    return rows, labels


class MasterData:
    """Held-out rows, training shards and the fitted pipeline that made them."""

    def __init__(self, pipeline, train: tuple[np.ndarray, np.ndarray], holdout: tuple[np.ndarray, np.ndarray],
                 shards: int, raw_width: int):
        self.pipeline = pipeline
        self.unlabelled = for_prediction(pipeline, ["features"])  # for rows to predict (no label required)
        self.train_features, self.train_labels = train
        self.holdout_features, self.holdout_labels = holdout
        self.raw_width = raw_width
        self._shards = np.array_split(np.arange(len(self.train_labels)), shards)

    @classmethod
    def from_config(cls, config: DownpourConfig, workdir: str) -> "MasterData":
        """Load ``data.bundled``, fit the pipeline on the training part, transform both parts."""
        table = load_bundled(config.data.bundled)
        order = np.random.default_rng(config.data.seed).permutation(table.num_rows)
        held = int(round(table.num_rows * config.data.holdout_fraction))
        if held < 1 or table.num_rows - held < config.data.shards:
            raise DataError(f"{config.data.bundled} has {table.num_rows} rows: too few for a held-out fraction of "
                            f"{config.data.holdout_fraction} and {config.data.shards} shards.")
        pipeline = Intake.from_config(config, workdir, None).pipeline
        train_table, holdout_table = table.take(order[held:]), table.take(order[:held])
        if not pipeline.is_fitted:
            pipeline.fit(train_table)
        parts = [cls._transformed(pipeline, part) for part in (train_table, holdout_table)]
        raw_width = len(table.column("features")[0])
        logger.info("master data: %d training rows in %d shards, %d held out", len(parts[0][1]), config.data.shards,
                    len(parts[1][1]))
        return cls(pipeline, parts[0], parts[1], config.data.shards, raw_width)

    @staticmethod
    def _transformed(pipeline, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        result = pipeline.transform(table)
        features, labels = table_rows(result.table, pipeline.features, pipeline.label)
        if labels is None or not len(labels):
            raise DataError(f"the master's pipeline left no labelled rows of {table.num_rows} (quarantined: "
                            f"{result.quarantine.num_rows}); check its steps.")
        return features, labels

    @property
    def shards(self) -> int:
        return len(self._shards)

    def shard(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._shards[index]
        return self.train_features[rows], self.train_labels[rows]

    def preprocess(self, raw: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """Raw rows (as the dataset has them) through the pipeline: the rows kept, their labels, and the
        reasons of those the pipeline quarantined."""
        if raw.ndim != 2 or raw.shape[1] != self.raw_width:
            raise DataError(f"raw rows have {self.raw_width} values each (as the dataset's); got shape {raw.shape}.")
        pipeline = self.pipeline if labels is not None else self.unlabelled
        result = pipeline.transform(rows_table(raw, labels))
        features, kept = table_rows(result.table, pipeline.features, pipeline.label)
        reasons = [row["reason"] for row in result.quarantine.select(["reason"]).to_pylist()]
        return features, kept, reasons
