"""TorchBatches under torch's interpreter (this venv may lack torch): zero-copy tensors from writable
batches, copies of read-only ones. Its install hint without torch is tests/unit/feed/test_adapters.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.unit.feed.conftest import make_dataset

ROOT = Path(__file__).resolve().parents[3]

SHARED_MEMORY_CHECK = """
import sys
import numpy as np
import torch
from h3spark.feed import DataIterator, TorchBatches

data = DataIterator(sys.argv[1], batch_size=8, shuffle=True, shuffle_buffer=16)
batches = list(TorchBatches(data))
assert len(batches) == len(data) == 5
x, y = batches[0]
assert x.dtype == torch.float32 and x.shape == (8, 4) and torch.equal(x[:, 0], y.float())
adapter = TorchBatches(data)
writable = np.arange(6, dtype=np.float32)
assert adapter._tensor(writable).data_ptr() == writable.ctypes.data  # zero-copy
read_only = np.frombuffer(writable.tobytes(), dtype=np.float32)
assert adapter._tensor(read_only).data_ptr() != read_only.ctypes.data  # copied, never aliased
print("ok")
"""


def test_torch_tensors_share_memory_with_writable_batches(torch_python, tmp_path):
    uri = make_dataset(tmp_path, rows=40, files=1, row_groups=1)
    done = subprocess.run([torch_python, "-c", SHARED_MEMORY_CHECK, uri], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok"]
