"""The torch integration tests: an interpreter with torch, and a small published dataset.

The engine's workers run under ``H3SPARK_WORKER_PYTHON``: the interpreter of this venv when it
has torch, else ``.venv-torch`` (made by ``scripts/setup_torch.sh``), so that the Spark venv
(numpy 1.23 for MXNet) need not hold torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.storage import describe_splits, publishing, write_manifest
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]


def _has_torch(python: str) -> bool:
    return subprocess.run([python, "-c", "import torch, h3spark"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def torch_python() -> str:
    """An interpreter that imports torch and h3spark."""
    candidates = [os.environ.get("H3SPARK_TORCH_PYTHON"), sys.executable, str(ROOT / ".venv-torch" / "bin" / "python")]
    for python in filter(None, candidates):
        if Path(python).exists() and _has_torch(python):
            return python
    require(False, "torch is not installed; create .venv-torch with: bash scripts/setup_torch.sh")


@pytest.fixture(scope="session")
def torch_here():
    """torch, imported in this interpreter (the model tests run in-process), held to one thread:
    the test machine's cores are shared, and torch's threads would only contend for them."""
    try:
        import torch
    except ImportError:
        require(False, f"torch is not installed in this interpreter ({sys.executable}); scripts/setup.sh installs it into .venv")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture
def blobs(tmp_path) -> str:
    """Gaussian blobs (16 features, 4 classes) in split=train (2048 rows) and split=test (512)."""
    uri = f"file://{tmp_path}/blobs"
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (4, 16)).astype(np.float32)
    with publishing(uri) as tmp_uri:
        for split, count in (("train", 2048), ("test", 512)):
            labels = rng.integers(0, 4, count)
            features = centers[labels] + rng.normal(0, 1, (count, 16)).astype(np.float32)
            folder = Path(tmp_uri[len("file://"):], f"split={split}")
            folder.mkdir(parents=True)
            offsets = pa.array(np.arange(0, count * 16 + 1, 16, dtype=np.int32))
            table = pa.table({"features": pa.ListArray.from_arrays(offsets, pa.array(features.reshape(-1))),
                              "label": pa.array(labels.astype(np.int64))})
            pq.write_table(table, folder / "part-00000.parquet", row_group_size=256)
        write_manifest(tmp_uri, {"rows": 2048, "features": "features", "label": "label", "splits": describe_splits(tmp_uri),
                                 "columns": {"features": {"dtype": "float32", "shape": [16], "encoding": "list"},
                                             "label": {"dtype": "int64", "shape": []}}})
    return uri
