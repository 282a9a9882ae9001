"""One Arrow batch in, its predictions out: the fitted pipeline, then the model (what each Spark task of
``h3spark predict`` runs on every batch, and what a test runs without Spark).

    >>> predictor = BatchPredictor(model, for_prediction(pipeline, frame.columns, ["id"]), label="label", keep=["id"])
    >>> block = predictor.predict(arrow_table)
    >>> block.table.column_names          # the kept columns, the label (when the input has it), then
    ['id', 'label', 'prediction', 'probability', 'probabilities']
    >>> block.quarantine                  # rows the pipeline refused: row (JSON), reason, step

``prediction`` is the predicted label (int64), ``probability`` its probability and
``probabilities`` one per class (``model.classes``, in order).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import DataError
from h3spark.feed import ColumnSpec, to_numpy
from h3spark.preprocess import Pipeline
from h3spark.preprocess._block import QUARANTINE_SCHEMA
from h3spark.serve._model import ServedModel

PREDICTION_COLUMNS = ("prediction", "probability", "probabilities")


@dataclass
class PredictedBlock:
    """A batch's predictions, the rows refused, and counts for the summary."""

    table: pa.Table
    quarantine: pa.Table
    rows_in: int
    labelled: int = 0  # rows with a true label
    correct: int = 0  # of those, rows predicted right


def for_prediction(pipeline: Pipeline, columns: list[str], keep: list[str] = ()) -> Pipeline:
    """The fitted ``pipeline`` made to run on new rows with ``columns``: split steps are left out (every
    row is predicted); the label is carried like the ``keep`` columns when the input has it, never
    required (a row without one is predicted, not refused), and steps that read only a label the input
    lacks are left out."""
    adapted = copy.deepcopy(pipeline)
    adapted.steps = [step for step in adapted.steps if step.kind != "split"]
    label, adapted.label = adapted.label, None
    if label is not None and label not in columns:
        adapted.steps = [step for step in adapted.steps if set(step.inputs()) - {label}]
    carried = [*adapted.keep, *keep, *([label] if label in columns else [])]
    adapted.keep = list(dict.fromkeys(carried))
    missing = [name for name in keep if name not in columns]
    if missing:
        raise DataError(f"predict.keep names {missing}, which the input does not have; it has {columns}.")
    return adapted


class BatchPredictor:
    """Applies a pipeline made by :func:`for_prediction` (or none: the input already holds the vectors
    in ``features``) and a model to batches; ``label`` (when a batch has it) is copied and scored."""

    def __init__(self, model: ServedModel, pipeline: Pipeline | None = None, features: str = "features",
                 label: str | None = "label", keep: list[str] = ()):
        self.model, self.pipeline, self.label, self.keep = model, pipeline, label, list(keep)
        self.features = pipeline.features if pipeline is not None else features

    def predict(self, table: pa.Table) -> PredictedBlock:
        if self.pipeline is not None:
            result = self.pipeline.transform(table)
            rows, quarantine, rows_in = result.table, result.quarantine, result.rows_in
        else:
            rows, quarantine, rows_in = table, QUARANTINE_SCHEMA.empty_table(), table.num_rows
        X = feature_matrix(rows, self.features, self.model.features)
        probabilities = self.model.predict(X) if len(X) else np.zeros((0, len(self.model.classes)), np.float32)
        predicted = self.model.labels(probabilities)
        label = self.label if self.label is not None and self.label in rows.column_names else None
        output = rows.select([name for name in self.keep if name != label] + ([label] if label else []))
        output = _with_predictions(output, predicted, probabilities)
        labelled, correct = _score(rows.column(label), predicted) if label else (0, 0)
        return PredictedBlock(output, quarantine, rows_in, labelled, correct)


def feature_matrix(table: pa.Table, column: str, width: int) -> np.ndarray:
    """(rows, width) float32 from a column of vectors: a list or fixed-size list of numbers, or binary
    little-endian float32 (an h3spark dataset's encoding, as Spark hands it: binary)."""
    if column not in table.column_names:
        raise DataError(f"the input has no column {column!r} of feature vectors; it has {table.column_names}. "
                        "Give the pipeline the model was trained with (predict.pipeline), or name the column "
                        "(predict.features).")
    values = table.column(column).combine_chunks()
    if pa.types.is_binary(values.type) or pa.types.is_fixed_size_binary(values.type):
        return _binary_matrix(values, column, width)
    if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or pa.types.is_fixed_size_list(values.type)):
        raise DataError(f"column {column!r} is {values.type}; the model needs a vector of {width} numbers per row.")
    return to_numpy(values, ColumnSpec(column, "float32", (width,), "list"), "the input's ")


def _binary_matrix(values: pa.Array, column: str, width: int) -> np.ndarray:
    if values.null_count:
        raise DataError(f"the input's column {column!r} has {values.null_count} null rows; drop or impute them first.")
    if pa.types.is_fixed_size_binary(values.type):
        lengths, start, data = np.full(len(values), values.type.byte_width), values.offset * values.type.byte_width, 1
    else:
        offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
        lengths, start, data = np.diff(offsets), int(offsets[0]), 2
    if len(values) and not np.all(lengths == 4 * width):
        raise DataError(f"column {column!r} holds binary vectors of {int(lengths[lengths != 4 * width][0])} bytes; "
                        f"the model takes {width} float32 values ({4 * width} bytes) per row.")
    flat = np.frombuffer(values.buffers()[data], dtype="<f4", count=len(values) * width, offset=start)
    return flat.reshape(len(values), width).astype(np.float32, copy=False)


def _with_predictions(table: pa.Table, predicted: np.ndarray, probabilities: np.ndarray) -> pa.Table:
    rows, classes = probabilities.shape
    chosen = probabilities[np.arange(rows), np.argmax(probabilities, axis=1)] if rows else np.zeros(0, np.float32)
    vectors = pa.ListArray.from_arrays(pa.array(np.arange(0, rows * classes + 1, classes, dtype=np.int32)),
                                       pa.array(np.ascontiguousarray(probabilities, np.float32).reshape(-1)))
    columns = [pa.array(predicted, pa.int64()), pa.array(chosen.astype(np.float32)), vectors]
    for name, column in zip(PREDICTION_COLUMNS, columns):
        table = table.append_column(name, column)
    return table.replace_schema_metadata(None)


def _score(labels: pa.ChunkedArray, predicted: np.ndarray) -> tuple[int, int]:
    known = pc.is_valid(labels).to_numpy(zero_copy_only=False)
    values = pc.fill_null(labels, 0).to_numpy(zero_copy_only=False)
    if not np.issubdtype(np.asarray(values).dtype, np.number):
        return 0, 0  # a label the model does not predict (text): copied, not scored
    return int(known.sum()), int(((np.asarray(values) == predicted) & known).sum())
