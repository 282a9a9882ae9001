"""Datasets that ship with scikit-learn, as Arrow tables (no download needed)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from h3spark.errors import ConfigError
from h3spark.ingest._columns import FEATURES, LABEL

_LOADERS = {
    "digits": "load_digits",
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
}


def bundled_names() -> list[str]:
    return sorted(_LOADERS)


def load_bundled(name: str) -> pa.Table:
    """A bundled dataset as a table with ``features: list<float32>`` and ``label: int64`` (the names
    a manifest claims, see :func:`h3spark.ingest.manifest_columns`).

    >>> load_bundled("digits").num_rows
    1797
    """
    if name not in _LOADERS:
        raise ConfigError("source.name", [f"unknown bundled dataset {name!r}. Choose one of: {', '.join(bundled_names())}."])
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, _LOADERS[name])()
    features = np.ascontiguousarray(bunch.data, dtype=np.float32)
    width = features.shape[1]
    offsets = np.arange(0, features.size + 1, width, dtype=np.int32)
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(features.reshape(-1)))
    table = pa.table({FEATURES: column, LABEL: pa.array(bunch.target.astype(np.int64))})
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or [f"pixel_{i}" for i in range(width)]
    metadata = {b"h3spark.feature_names": ",".join(names).encode(), b"h3spark.feature_shape": str(width).encode()}
    return table.replace_schema_metadata(metadata)
