"""ArrayBatches: in-memory rows as a BatchSource."""

import numpy as np
import pytest

from h3spark.errors import DataError, UsageError
from h3spark.feed import ArrayBatches


def test_epochs_cover_every_row_in_their_own_seeded_order():
    features, labels = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    data = ArrayBatches(features, labels, batch_size=4, epochs=2, seed=7)
    assert len(data) == 6 and data.batches_per_epoch == 3 and data.feature_shape == (2,) and data.feature_dtype == "float32"
    epochs = [[batch.labels for batch in data.iter_epoch(epoch)] for epoch in (0, 1)]
    assert [len(batch) for batch in epochs[0]] == [4, 4, 2]
    orders = [np.concatenate(batches) for batches in epochs]
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(10)) and list(orders[0]) != list(orders[1])
    np.testing.assert_array_equal(np.concatenate([batch.labels for batch in data]), np.concatenate(orders))
    again = ArrayBatches(features, labels, batch_size=4, epochs=2, seed=7)
    np.testing.assert_array_equal(np.concatenate([batch.labels for batch in again]), np.concatenate(orders))
    for batch in data:
        np.testing.assert_array_equal(batch.features[:, 0], 2 * batch.labels)  # rows stay whole


def test_without_a_seed_rows_keep_their_order():
    data = ArrayBatches(np.zeros((5, 1)), np.arange(5), batch_size=2)
    assert [batch.labels.tolist() for batch in data] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "The 'batch_size' parameter of ArrayBatches must be an int >= 1. Got 0 instead."),
    ({"batch_size": 2, "epochs": 0}, "The 'epochs' parameter of ArrayBatches must be an int >= 1. Got 0 instead."),
])
def test_bad_options_say_what_to_change(options, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ArrayBatches(np.zeros((3, 1)), np.arange(3), **options)


def test_features_and_labels_must_have_the_same_rows():
    with pytest.raises(DataError, match="ArrayBatches got 3 rows of features but 2 labels"):
        ArrayBatches(np.zeros((3, 1)), np.arange(2), batch_size=2)
