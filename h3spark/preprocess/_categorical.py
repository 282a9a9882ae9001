"""Categorical and text steps: one-hot, string index, feature hashing, hashed bag of words.

A vocabulary is fitted state: it goes into the dataset's manifest and to every task. So
``max_category_chars`` bounds each entry (a longer value stays out of the vocabulary and
its rows go to quarantine) and ``max_categories`` the number of entries; the preprocessing
job bounds the whole fitted pipeline (``preprocess.max_state_mib``).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import DataError
from h3spark.preprocess._base import FLOAT32_MAX, ColumnWorker, Preprocessor, Worker, column_of, vectors
from h3spark.preprocess._block import Block
from h3spark.preprocess._stats import by_frequency, finish, sorted_values

logger = logging.getLogger(__name__)
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


def _short_values(counts: dict, limit: int, step: str, column: str) -> dict:
    """The counted values that fit a vocabulary entry (strings of at most ``limit`` characters)."""
    kept = {value: count for value, count in counts.items() if not (isinstance(value, str) and len(value) > limit)}
    if len(kept) < len(counts):
        logger.warning("%d values of column %r are longer than max_category_chars=%d: they stay out of the "
                       "vocabulary, and their rows go to quarantine step=%s", len(counts) - len(kept), column, limit,
                       step)
    return kept


def _without_long_values(block: Block, name: str, column, limit: int):
    """Send rows whose value is longer than ``limit`` characters to quarantine; return the rest of the column."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    long = pc.fill_null(pc.greater(pc.utf8_length(column), limit), False).to_numpy(zero_copy_only=False)
    if not long.any():
        return column
    block.reject(long, f"value longer than max_category_chars={limit} in column {name!r}")
    return column.filter(pa.array(~long))


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
        return {"vocabulary": _vocabularies(self, merged, sorted_values)}

    def _workers(self):
        vocabularies, policy, limit = self.state_["vocabulary"], self.spec.handle_unknown, self.spec.max_category_chars

        def encode(name, column, block):
            column = _without_long_values(block, name, column, limit)
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
        return {"vocabulary": _vocabularies(self, merged, order)}

    def _workers(self):
        vocabularies, policy, limit = self.state_["vocabulary"], self.spec.handle_unknown, self.spec.max_category_chars

        def index(name, column, block):
            column = _without_long_values(block, name, column, limit)
            found = _unknown(block, name, _index_of(column, vocabularies[name]), column, policy)
            return pa.array(np.where(found < 0, len(vocabularies[name]), found).astype(np.int64))

        return [ColumnWorker(list(vocabularies), index)]


def _vocabularies(step: Preprocessor, merged: dict, order) -> dict:
    """Each column's vocabulary in ``order``: values of at most max_category_chars, the
    max_categories most frequent of them when set."""
    spec, vocabularies = step.spec, {}
    for column in spec.columns:
        counts = _short_values(finish(merged, column, "counts"), spec.max_category_chars, step.name, column)
        chosen = by_frequency(counts)[: spec.max_categories] if spec.max_categories else list(counts)
        vocabularies[column] = order({value: counts[value] for value in chosen})
    return vocabularies


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
        for name in self.columns:  # a number beyond float32 (inf) has no place in the vector: its row leaves first
            column = column_of(block.table, name, block.step)
            if _hashed_as_number(column):
                block.reject(np.abs(_numbers(column)) > FLOAT32_MAX,
                             f"infinite value (or one beyond float32) in column {name!r}")
        table = block.table
        matrix = np.zeros((table.num_rows, self.width), dtype=np.float32)
        rows = np.arange(table.num_rows)
        for name in self.columns:
            column = column_of(table, name, block.step)
            if _hashed_as_number(column):  # a missing number (null or NaN) adds nothing
                values = np.nan_to_num(_numbers(column), nan=0.0)
                np.add.at(matrix, (rows, int(stable_hash([name])[0] % self.width)), values.astype(np.float32))
            else:
                text = pc.cast(column, pa.string()).to_pandas()
                present = text.notna().to_numpy()
                slots = stable_hash((name + "=" + text[present]).to_numpy()) % self.width
                np.add.at(matrix, (rows[present], slots.astype(np.int64)), 1.0)
        block.replace(_put(block.table, self.output, vectors(matrix)))


def _hashed_as_number(column) -> bool:
    return pa.types.is_integer(column.type) or pa.types.is_floating(column.type)  # booleans hash as "col=True"


def _numbers(column) -> np.ndarray:
    """float64 values, NaN for nulls."""
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


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
