"""The MXNet engine on local Spark: training, failure + resume to identical weights, DCASGD, the example conf,
labels checked against the model on the workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from h3spark.cli import main
from h3spark.config import H3SparkConfig, load_config
from h3spark.errors import JobFailedError
from h3spark.storage import resolve_published
from h3spark.train import distributed, latest_checkpoint, train_from_config, worker_settings
from h3spark.train.engines.model import load_weights

FAIL_AT_STEP_ENV = "H3SPARK_FAIL_AT_STEP"
ROOT = Path(__file__).resolve().parents[4]


def config_for(dataset_uri: str, name: str, **training) -> H3SparkConfig:
    base = {"engine": "mxnet", "workers": 2, "servers": 1, "epochs": 2, "batch_size": 64, "lr": 0.05, "momentum": 0.9,
            "seed": 3, "checkpoint_interval": 8, "validation_split": "test", "params": {"hidden": [32], "classes": 4}}
    return H3SparkConfig(name=name, dataset={"uri": dataset_uri}, training={**base, **training})


def final_weights(checkpoint_uri: str) -> dict[str, np.ndarray]:
    """The weights of a checkpoint's model.safetensors, by LAYER.PARAM (the mlp: hidden0.*, logits.*)."""
    path = resolve_published(checkpoint_uri)[len("file://"):]
    weights, meta = load_weights(os.path.join(path, "model.safetensors"))
    assert meta["engine"] == "mxnet"
    return weights


def read_meta(checkpoint_uri: str) -> dict:
    return json.loads(Path(resolve_published(checkpoint_uri)[len("file://"):], "checkpoint.json").read_text())


def test_dist_sync_trains_and_checkpoints_weights_and_slots(spark, blobs, workdir):
    summary, results = train_from_config(config_for(blobs, "sync"), workdir, spark=spark, echo=False)
    lead = next(r for r in results if r["rank"] == 0)
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert {r["steps"] for r in results} == {2 * 1024 // 64}  # equal shards: 16 batches per epoch each
    assert lead["val_accuracy"] > 0.9
    meta = read_meta(lead["checkpoint"])
    assert meta["optimizer_state"] is True and meta["optimizer"]["slots"]  # momentum slots saved
    assert (meta["run"], meta["step"], meta["config"]["lr"]) == (1, 32, 0.05) and meta["loss"] > 0
    assert os.listdir(workdir / "checkpoints" / "sync") == ["run-0001"]
    # the last 3 (keep_checkpoints' default) and the best; step 8's mean loss is the highest of the run
    assert sorted(os.listdir(workdir / "checkpoints" / "sync" / "run-0001")) == [f"step-{s:08d}" for s in (16, 24, 32)]
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir / "logs" / "sync"))
    assert dict(summary)["validation accuracy"] == f"{lead['val_accuracy']:.4f}"


def test_a_failed_worker_fails_the_job_and_resume_reaches_the_same_weights(spark, blobs, workdir):
    _, straight = train_from_config(config_for(blobs, "straight"), workdir, spark=spark, echo=False)
    broken = config_for(blobs, "broken")
    with pytest.raises(JobFailedError, match=r"(?s)worker \d on host .*exited with code 1.*failing on purpose at step 13"):
        train_from_config(broken, workdir, spark=spark, echo=False, env={FAIL_AT_STEP_ENV: "13"})
    assert latest_checkpoint(f"file://{workdir}/checkpoints/broken").endswith("run-0001/step-00000008")
    summary, resumed = train_from_config(broken, workdir, resume=True, spark=spark, echo=False)
    assert dict(summary)["run"] == "1, resumed from step 8"
    lead = next(r for r in resumed if r["rank"] == 0)
    assert lead["checkpoint"].endswith("run-0001/step-00000032")
    assert lead["steps"] == 32 and lead["samples"] == (32 - 8) * 64
    expected = final_weights(next(r for r in straight if r["rank"] == 0)["checkpoint"])
    got = final_weights(lead["checkpoint"])
    assert sorted(expected) == ["hidden0.bias", "hidden0.weight", "logits.bias", "logits.weight"]
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def test_dist_async_with_dcasgd_momentum_on_the_servers(spark, blobs, workdir):
    config = config_for(blobs, "async", kvstore="dist_async", optimizer="dcasgd", optimizer_on="servers", momentum=0.5)
    _, results = train_from_config(config, workdir, spark=spark, echo=False)
    lead = next(r for r in results if r["rank"] == 0)
    assert lead["val_accuracy"] > 0.9
    meta = read_meta(lead["checkpoint"])
    assert meta["optimizer_state"] is False  # server-side slots cannot be saved; documented


def test_kvstore_local_with_adam_warmup_cosine_clipping_resumes_to_the_same_weights(blobs, workdir):
    """One worker on kvstore local, without Spark: the training options reach MXNetModel, and a
    resume puts Adam's slots and update counts back (its bias correction depends on them)."""
    options = {"kvstore": "local", "workers": 1, "launcher": "local", "optimizer": "adam", "lr": 0.01, "warmup_steps": 5,
               "schedule": "cosine", "total_steps": 64, "min_lr": 0.001, "weight_decay": 1e-4, "clip_norm": 1.0}
    _, (straight,) = train_from_config(config_for(blobs, "local", **options), workdir, echo=False)
    assert straight["steps"] == 2 * 2048 // 64 and straight["val_accuracy"] > 0.9
    meta = read_meta(straight["checkpoint"])
    assert (meta["engine"], meta["kvstore"], meta["optimizer_state"]) == ("mxnet", "local", True)
    assert meta["optimizer"]["counters"]["num_update"] == 64 and meta["optimizer"]["slots"]  # mean and variance
    broken = config_for(blobs, "local_broken", **options)
    with pytest.raises(JobFailedError, match="failing on purpose at step 21"):
        train_from_config(broken, workdir, echo=False, env={FAIL_AT_STEP_ENV: "21"})
    _, (resumed,) = train_from_config(broken, workdir, resume=True, echo=False)
    assert resumed["samples"] == (64 - 16) * 64
    expected, got = final_weights(straight["checkpoint"]), final_weights(resumed["checkpoint"])
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def test_example_conf_runs_then_resumes_from_its_last_checkpoint(spark, workdir, capsys):
    conf = str(ROOT / "conf" / "train_mxnet_example.yaml")
    assert load_config(conf).training.engine == "mxnet"
    assert main(["run", conf, "--workdir", str(workdir), "--set", "training.epochs=1"]) == 0
    first = latest_checkpoint(f"file://{workdir}/checkpoints/train_mxnet_example")
    assert main(["train", conf, "--workdir", str(workdir), "--resume", "--set", "training.epochs=2"]) == 0
    second = latest_checkpoint(f"file://{workdir}/checkpoints/train_mxnet_example")
    assert int(second.rsplit("-", 1)[1]) == 2 * int(first.rsplit("-", 1)[1])
    assert "h3spark train train_mxnet_example: done" in capsys.readouterr().out


def test_a_worker_refuses_labels_beyond_the_model_classes(blobs, workdir):
    """The driver checks too (tests/unit/train/test_labels.py); this is train_worker called directly."""
    settings = worker_settings(config_for(blobs, "few", kvstore="local", workers=1, params={"classes": 3}), workdir, False)
    with pytest.raises(JobFailedError, match=r"(?s)the labels of split 'train' of .* run from 0 to 3, but "
                                              r"training.params.classes is 3"):
        distributed("h3spark.train.engines.mxnet:train_worker", num_workers=1, kvstore="local", args=(settings,),
                    launcher="local", echo=False)
    assert latest_checkpoint(f"file://{workdir}/checkpoints/few") is None  # its run (reserved by worker_settings) has none
