"""A manifest that names no features or label column: feeding says so (or feeds no labels), and
training refuses it on the driver before any worker starts."""

import json
from pathlib import Path

import pytest

from h3spark.errors import DataError
from h3spark.feed import DataIterator
from h3spark.storage import local_path, resolve_published
from h3spark.workflow._stages import require_training_columns


def _edit_manifest(uri: str, **changes) -> None:
    path = Path(local_path(resolve_published(uri))) / "_manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_manifest_without_a_features_column_is_a_clear_error(dataset):
    uri = dataset(rows=20)
    _edit_manifest(uri, features=None)
    with pytest.raises(DataError, match=r"names no features column \(\"features\": null in its manifest\); its files "
                                        r"have \['features', 'label'\]\. .*assemble step"):
        DataIterator(uri)
    with pytest.raises(DataError, match="names no features column"):
        require_training_columns(uri)
    assert DataIterator(uri, features="features").feature_shape == (4,)  # naming a column still works


def test_a_dataset_without_a_label_feeds_but_does_not_train(dataset):
    uri = dataset(rows=20)
    _edit_manifest(uri, label=None)
    data = DataIterator(uri, batch_size=20)
    assert not data.has_labels and next(iter(data)).labels is None
    with pytest.raises(DataError, match=r"names no label column \(its manifest's \"label\" is null\); its files have "
                                        r"\['features', 'label'\]\. Training needs labels"):
        require_training_columns(uri)
    _edit_manifest(uri, label="target")
    with pytest.raises(DataError, match=r"no column 'target'; its files have \['features', 'label'\]"):
        require_training_columns(uri)
