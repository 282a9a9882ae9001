"""The MXNet engine checkpoints to hdfs:// (WebHDFS) and resumes from there."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from h3spark.config import H3SparkConfig
from h3spark.storage import describe_splits, filesystem_for, join_uri, publishing, resolve_published, write_manifest
from h3spark.train import latest_checkpoint, train_from_config
from tests.conftest import require


def publish_blobs(root: Path) -> str:
    uri = f"file://{root}/blobs"
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (4, 16)).astype(np.float32)
    labels = rng.integers(0, 4, 1024)
    features = centers[labels] + rng.normal(0, 1, (1024, 16)).astype(np.float32)
    with publishing(uri) as tmp_uri:
        offsets = pa.array(np.arange(0, 1024 * 16 + 1, 16, dtype=np.int32))
        table = pa.table({"features": pa.ListArray.from_arrays(offsets, pa.array(features.reshape(-1))),
                          "label": pa.array(labels.astype(np.int64))})
        os.makedirs(tmp_uri[len("file://"):])
        pq.write_table(table, os.path.join(tmp_uri[len("file://"):], "part-00000.parquet"), row_group_size=256)
        write_manifest(tmp_uri, {"rows": 1024, "features": "features", "label": "label", "splits": describe_splits(tmp_uri),
                                 "columns": {"features": {"dtype": "float32", "shape": [16], "encoding": "list"},
                                             "label": {"dtype": "int64", "shape": []}}})
    return uri


def test_checkpoints_go_to_hdfs_and_resume_continues_from_them(hdfs_service, tmp_path):
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    root = join_uri(hdfs_service.uri, f"/tmp/h3spark-tests/train-{uuid.uuid4().hex[:8]}")
    training = {"engine": "mxnet", "workers": 2, "servers": 1, "epochs": 1, "batch_size": 64, "lr": 0.05, "momentum": 0.9,
                "seed": 3, "checkpoint_interval": 4, "launcher": "local", "checkpoint_uri": root,
                "params": {"hidden": [16], "classes": 4}}
    dataset = {"uri": publish_blobs(tmp_path)}
    fs = filesystem_for(root)
    try:
        _, first = train_from_config(H3SparkConfig(name="h", dataset=dataset, training=training), tmp_path / "w", echo=False)
        assert latest_checkpoint(root) == join_uri(root, "run-0001", "step-00000008")
        assert next(r for r in first if r["rank"] == 0)["checkpoint"].startswith("hdfs://")
        config = H3SparkConfig(name="h", dataset=dataset, training={**training, "epochs": 2})
        _, resumed = train_from_config(config, tmp_path / "w", resume=True, echo=False)
        lead = next(r for r in resumed if r["rank"] == 0)
        assert lead["steps"] == 16 and lead["samples"] == 8 * 64  # only epoch 2 ran again
        assert lead["checkpoint"] == join_uri(root, "run-0001", "step-00000016") == latest_checkpoint(root)
        meta = json.loads(fs.read_bytes(join_uri(resolve_published(lead["checkpoint"]), "checkpoint.json")))
        assert (meta["run"], meta["step"], meta["optimizer_state"]) == (1, 16, True)
        # the last 3 of steps 4, 8, 12, 16 (keep_checkpoints' default) and the best: step 4's mean loss is the highest
        assert sorted(name.rstrip("/").rsplit("/", 1)[-1] for name in fs.listdir(join_uri(root, "run-0001"))) == [
            "step-00000008", "step-00000012", "step-00000016"]
    finally:
        if fs.exists(root):
            fs.delete(root)
