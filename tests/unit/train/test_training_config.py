"""The training: section's cross-field rules: one sklearn-style sentence each, exit 2 through h3spark validate."""

from __future__ import annotations

import pytest

from h3spark.cli import main

RULES = [
    ("engine: mxnet\n  kvstore: local\n  workers: 2",
     "The 'workers' parameter must be 1 with kvstore 'local', which trains in one process. Got 2 instead."),
    ("engine: mxnet\n  kvstore: dist_sync\n  servers: 0",
     "The 'servers' parameter must be an int in the range [1, inf) with kvstore 'dist_sync'. Got 0 instead."),
    ("engine: mxnet\n  kvstore: dist_async",
     "The 'optimizer_on' parameter must be 'servers' with kvstore 'dist_async'"),
    ("engine: mxnet\n  gpus: 1\n  workers: 1",
     "The 'gpus' parameter must be 0 with engine 'mxnet'"),
    ("engine: torch\n  gpus: 2\n  workers: 3",
     "The 'workers' parameter must equal gpus (2) with engine 'torch', which runs one process per GPU. Got 3 instead."),
    ("engine: torch\n  optimizer: adamw",
     "The 'optimizer' parameter must be one of ['sgd', 'adam', 'dcasgd'] with engine 'torch'. Got 'adamw' instead."),
    ("engine: torch\n  optimizer_on: servers",
     "The 'optimizer_on' parameter must be 'workers' with engine 'torch'"),
    ("engine: torch\n  model: resnet",
     "The 'model' parameter must be one of ['mlp'] for engine 'torch'. Got 'resnet' instead."),
]


@pytest.mark.parametrize("training, message", RULES, ids=[r[0].replace("\n  ", " ") for r in RULES])
def test_cross_field_rule_names_the_parameter_and_exits_2(tmp_path, capsys, training, message):
    path = tmp_path / "train.yaml"
    path.write_text(f"name: demo\ntraining:\n  {training}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"h3spark: invalid config {path} (1 problem)" in err
    assert f"line 2  training: {message}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("training", [
    "engine: mxnet\n  kvstore: local\n  workers: 1",
    "engine: mxnet\n  kvstore: dist_async\n  optimizer_on: servers\n  optimizer: dcasgd",
    "engine: torch\n  gpus: 2\n  workers: 2\n  optimizer: adam",
    "engine: torch\n  optimizer: dcasgd\n  momentum: 0.9",
    "engine: torch\n  kvstore: dist_async\n  servers: 0",  # kvstore and servers mean nothing to torch
    "engine: sklearn\n  workers: 7\n  kvstore: local",  # sklearn ignores the distributed fields
])
def test_consistent_sections_validate(tmp_path, capsys, training):
    path = tmp_path / "train.yaml"
    path.write_text(f"name: demo\ntraining:\n  {training}\n")
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
