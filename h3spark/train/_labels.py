"""Do a dataset's labels fit the model's outputs? Checked before training, from Parquet footers.

A classifier with ``classes`` outputs stands for the labels ``0 .. classes - 1``. MXNet's
softmax loss clips a larger label to the last class without a word, so a model with fewer
classes than the data would train and "succeed". The label range comes from the min/max
statistics in each file's footer (the rows are read only for a row group without them).

Null labels are refused too (DataError naming the file and row group), whether some or all
of a row group's labels are null: a null is no class, and the feeder would stop at it
mid-training ("has N null rows") where this check stops before any worker starts. The
footer's null count tells; a row group whose footer lacks it is read.

    >>> check_labels("datasets/digits", classes=10, setting="training.params.classes")
"""

from __future__ import annotations

import math
from typing import Iterable

from h3spark.errors import DataError
from h3spark.storage import ALL_ROWS
from h3spark.train._model import classes_setting, model_classes


def check_training_labels(settings: dict) -> None:
    """Check the splits a training run reads (``train_split``, ``validation_split``) against the
    model's classes (a spec's last layer, or ``params.classes``), given the worker settings (see
    ``h3spark.train.worker_settings``)."""
    splits = [settings.get("train_split")] + ([settings["validation_split"]] if settings.get("validation_split") else [])
    check_labels(settings["dataset_uri"], model_classes(settings), classes_setting(settings), splits)


def check_labels(uri: str, classes: int, setting: str, splits: Iterable[str | None] = (None,)) -> None:
    """Raise DataError when a split has no label column or its labels fall outside ``0 .. classes - 1``
    (``setting`` names where ``classes`` was set). A split of None is the feeder's default (train, else all)."""
    for split in dict.fromkeys(splits):
        dataset = _dataset(uri, split)
        dataset.require_label()  # a dataset without labels is refused here, before any worker starts
        bounds = _label_bounds(dataset)
        if bounds is not None and (bounds[0] < 0 or bounds[1] >= classes):
            where = uri if dataset.split == ALL_ROWS else f"split {dataset.split!r} of {uri}"
            raise DataError(_misfit(where, *bounds, classes, setting))


def _misfit(where: str, low: float, high: float, classes: int, setting: str) -> str:
    found = f"the labels of {where} run from {_number(low)} to {_number(high)}"
    if low < 0:
        return (f"{found}, but a classifier's labels are class indices 0 .. {setting} - 1; {_number(low)} is not one. "
                "Relabel the data to 0, 1, ... (preprocess's string_index step does that).")
    return (f"{found}, but {setting} is {classes}: the model has outputs for labels 0 .. {classes - 1} only. "
            f"Set {setting} to {math.floor(high) + 1} (or more), or relabel the data.")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def label_range(uri: str, split: str | None = None) -> tuple[float, float] | None:
    """``(min, max)`` of the label column of one split, or None when it feeds no scalar numeric label."""
    return _label_bounds(_dataset(uri, split))


def _dataset(uri: str, split: str | None):
    from h3spark.feed import DataIterator

    return DataIterator(uri, split, batch_size=1, prefetch=0, read_threads=1).dataset_


def _label_bounds(dataset) -> tuple[float, float] | None:
    spec = dataset.label_spec
    if spec is None or spec.shape != () or spec.dtype == "bool":
        return None
    low, high = math.inf, -math.inf
    for file in range(len(dataset.files)):
        metadata = dataset.parquet_metadata(file)
        column = _column_index(metadata, dataset.label)
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            if row_group.num_rows == 0:
                continue
            bounds = _group_bounds(dataset, file, group, row_group.column(column).statistics, row_group.num_rows)
            low, high = min(low, bounds[0]), max(high, bounds[1])
    return (low, high) if low <= high else None


def _column_index(metadata, name: str) -> int:
    paths = [metadata.row_group(0).column(index).path_in_schema for index in range(metadata.num_columns)]
    return paths.index(name)  # FeedDataset checked that the column exists


def _group_bounds(dataset, file: int, group: int, statistics, rows: int) -> tuple[float, float]:
    """``(min, max)`` of one row group's labels: from the footer when it counts no nulls, else read."""
    if statistics is not None and statistics.has_null_count and statistics.null_count == 0 and statistics.has_min_max:
        return statistics.min, statistics.max
    if statistics is not None and statistics.has_null_count and statistics.null_count > 0:
        raise DataError(_null_labels(dataset, file, group, statistics.null_count, rows))
    return _read_bounds(dataset, file, group)


def _read_bounds(dataset, file: int, group: int) -> tuple[float, float]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with dataset.fs.open_input(dataset.file_uri(file)) as handle:
        parquet = pq.ParquetFile(handle, metadata=dataset.parquet_metadata(file))
        column = parquet.read_row_group(group, columns=[dataset.label]).column(dataset.label)
    if column.null_count:
        raise DataError(_null_labels(dataset, file, group, column.null_count, len(column)))
    bounds = pc.min_max(column)
    return bounds["min"].as_py(), bounds["max"].as_py()


def _null_labels(dataset, file: int, group: int, nulls: int, rows: int) -> str:
    return (f"{dataset.describe(file, group)}: {nulls} of {rows} labels (column {dataset.label!r}) are null; a null "
            "label is no class, so training on it is wrong. Drop those rows or fill in their labels, then publish the "
            "dataset again.")
