"""Column decoding shared by the iterator, the stream batcher and the sklearn engine."""

import numpy as np
import pyarrow as pa
import pytest

from h3spark.errors import DataError
from h3spark.feed import ColumnSpec, table_to_arrays, to_numpy


@pytest.mark.parametrize("encoding", ["list", "binary"])
def test_sliced_columns_decode_their_own_rows(tensors, encoding):
    values = tensors.feature_values(np.arange(10), 4)
    column = tensors.tensor_column(values, encoding).slice(3, 4)
    decoded = to_numpy(column, ColumnSpec("features", "float32", (2, 2), encoding))
    np.testing.assert_array_equal(decoded, values[3:7].reshape(4, 2, 2))


def test_list_rows_of_different_lengths_are_refused():
    column = pa.array([[1.0, 2.0], [3.0]], type=pa.list_(pa.float32()))
    with pytest.raises(DataError, match="different lengths"):
        to_numpy(column, ColumnSpec("features", "float32", (2,), "list"))


def test_nulls_are_refused():
    with pytest.raises(DataError, match="null values inside"):
        to_numpy(pa.array([[1.0, None]]), ColumnSpec("features", "float32", (2,), "list"))
    with pytest.raises(DataError, match="1 null rows"):
        to_numpy(pa.array([[1.0, 2.0], None]), ColumnSpec("features", "float32", (2,), "list"))


def test_table_to_arrays():
    table = pa.table({"features": pa.array([[1, 2], [3, 4]], type=pa.list_(pa.float64())), "label": [0, 1]})
    X, y = table_to_arrays(table)
    assert X.shape == (2, 2) and list(y) == [0, 1]
    fixed = pa.table({"features": pa.array([[1, 2]], type=pa.list_(pa.float32(), 2)), "label": [1]})
    assert table_to_arrays(fixed)[0].dtype == np.float32
    with pytest.raises(DataError, match="no column 'label'"):
        table_to_arrays(table.drop(["label"]))
    with pytest.raises(DataError, match="empty"):
        table_to_arrays(table.slice(0, 0))
