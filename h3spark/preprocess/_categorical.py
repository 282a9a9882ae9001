"""Categorical and text steps: one-hot, string index, feature hashing, hashed bag of words."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import DataError
from h3spark.preprocess._base import ColumnWorker, Preprocessor, Worker, column_of, vectors
from h3spark.preprocess._block import Block
from h3spark.preprocess._stats import by_frequency, finish, sorted_values

_HASH_KEY = "h3spark.hashing0"  # pandas' hash_array needs 16 characters; fixed so hashes never change


def stable_hash(values) -> np.ndarray:
    """uint64 hashes of strings (or any values), the same in every process and version of h3spark."""
    return pd.util.hash_array(np.asarray(values, dtype=object), hash_key=_HASH_KEY, categorize=False)


def _index_of(column: pa.ChunkedArray, vocabulary: list) -> np.ndarray:
    """Position of each value in the vocabulary; -1 for unknown or missing values."""
    if len(vocabulary) == 0:
        return np.full(len(column), -1, dtype=np.int64)
    value_set = pa.array(vocabulary)
    if pa.types.is_floating(column.type) and pa.types.is_integer(value_set.type):
        value_set = pc.cast(value_set, column.type)
    elif value_set.type != column.type:
        try:
            value_set = pc.cast(value_set, column.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            column = pc.cast(column, pa.string())
            value_set = pc.cast(value_set, pa.string())
    index = pc.index_in(column, value_set=value_set)
    return pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _unknown(block: Block, name: str, index: np.ndarray, column, policy: str) -> np.ndarray:
    """Apply the unknown-category policy; return the indices of the rows still in the block."""
    unknown = index < 0
    if not unknown.any() or policy in ("ignore", "keep"):
        return index
    values = column.to_pandas()
    first = values[unknown].iloc[0]
    if policy == "error":
        raise DataError(f"step {block.step}: column {name!r} has the value {first!r}, unseen when fitting. Set "
                        "handle_unknown to ignore (or keep, or quarantine) to accept new categories.")
    reasons = np.empty(len(index), dtype=object)
    reasons[unknown] = [f"unknown category {value!r} in column {name!r}" for value in values[unknown]]
    block.reject(unknown, reasons)
    return index[~unknown]


class OneHot(Preprocessor):
    """Each column becomes a float32 vector with one slot per category, vocabulary sorted by value."""

    kind = "one_hot"

    def statistics(self):
        return [(column, "counts") for column in self.spec.columns]

    def _fit(self, merged):
        spec, vocabularies = self.spec, {}
        for column in spec.columns:
            counts = finish(merged, column, "counts")
            chosen = by_frequency(counts)[: spec.max_categories] if spec.max_categories else list(counts)
            vocabularies[column] = sorted_values({value: counts[value] for value in chosen})
        return {"vocabulary": vocabularies}

    def _workers(self):
        vocabularies, policy = self.state_["vocabulary"], self.spec.handle_unknown

        def encode(name, column, block):
            index = _unknown(block, name, _index_of(column, vocabularies[name]), column, policy)
            matrix = np.zeros((len(index), len(vocabularies[name])), dtype=np.float32)
            known = index >= 0
            matrix[np.flatnonzero(known), index[known]] = 1.0
            return vectors(matrix)

        return [ColumnWorker(list(vocabularies), encode)]


class StringIndex(Preprocessor):
    """Each column becomes an int64 index (by frequency, ties by value; or alphabetical)."""

    kind = "string_index"

    def statistics(self):
        return [(column, "counts") for column in self.spec.columns]

    def _fit(self, merged):
        order = by_frequency if self.spec.order == "frequency" else sorted_values
        return {"vocabulary": {column: order(finish(merged, column, "counts")) for column in self.spec.columns}}

    def _workers(self):
        vocabularies, policy = self.state_["vocabulary"], self.spec.handle_unknown

        def index(name, column, block):
            found = _unknown(block, name, _index_of(column, vocabularies[name]), column, policy)
            return pa.array(np.where(found < 0, len(vocabularies[name]), found).astype(np.int64))

        return [ColumnWorker(list(vocabularies), index)]


class HashFeatures(Preprocessor):
    """Feature hashing into one vector: strings add 1 at hash("col=value"), numbers add x at hash("col")."""

    kind = "hash_features"

    def outputs(self):
        return [self.spec.output]

    def _workers(self):
        return [_HashWorker(list(self.spec.columns), self.spec.num_features, self.spec.output)]


class _HashWorker(Worker):
    def __init__(self, columns, width, output):
        self.columns, self.width, self.output = columns, width, output

    def transform(self, block):
        table = block.table
        matrix = np.zeros((table.num_rows, self.width), dtype=np.float32)
        rows = np.arange(table.num_rows)
        for name in self.columns:
            column = column_of(table, name, block.step)
            if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
                values = pc.fill_null(pc.cast(column, pa.float64()), 0.0).to_numpy(zero_copy_only=False)
                np.add.at(matrix, (rows, int(stable_hash([name])[0] % self.width)), values.astype(np.float32))
            else:
                text = pc.cast(column, pa.string()).to_pandas()
                present = text.notna().to_numpy()
                slots = stable_hash((name + "=" + text[present]).to_numpy()) % self.width
                np.add.at(matrix, (rows[present], slots.astype(np.int64)), 1.0)
        block.replace(_put(block.table, self.output, vectors(matrix)))


def _put(table: pa.Table, name: str, column) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.schema.get_field_index(name), name, column)
    return table.append_column(name, column)


class TextHash(Preprocessor):
    """Text columns to hashed bags of words: token counts in num_features float32 slots."""

    kind = "text_hash"

    def _workers(self):
        spec = self.spec
        pattern = re.compile(spec.token_pattern)

        def bag(name, column, block):
            texts = pc.cast(column, pa.string()).to_pylist()
            if spec.lowercase:
                texts = [text.lower() if text is not None else None for text in texts]
            tokens = [pattern.findall(text) if text is not None else [] for text in texts]
            rows = np.repeat(np.arange(len(tokens)), [len(words) for words in tokens])
            flat = [word for words in tokens for word in words]
            matrix = np.zeros((len(tokens), spec.num_features), dtype=np.float32)
            if flat:
                np.add.at(matrix, (rows, (stable_hash(flat) % spec.num_features).astype(np.int64)), 1.0)
            return vectors(matrix)

        return [ColumnWorker(list(spec.columns), bag)]
