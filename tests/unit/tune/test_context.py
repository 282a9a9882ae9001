"""ctx.shard: the part of the dataset a trial process reads, from its data-parallel rank."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark import tune
from h3spark.errors import UsageError
from h3spark.feed import DataIterator
from h3spark.tune import Shard
from tests.unit.train.test_splits import publish


def read_own_shard(params, ctx):
    labels = np.concatenate([labels for _, labels in
                             DataIterator(ctx.dataset_uri, batch_size=64, rank=ctx.shard.rank, num_workers=ctx.shard.num_workers)])
    rows = sum(1 << int(label) for label in labels)  # the labels read, as a bit set (metrics are numbers)
    return {"accuracy": 1.0, "rank": ctx.shard.rank, "num_workers": ctx.shard.num_workers, "rows": rows}


def labels_read(row) -> set[int]:
    return {label for label in range(8) if int(row["metric_rows"]) >> label & 1}


@pytest.fixture
def dataset(tmp_path):
    return publish(tmp_path, {"train": (list(range(8)), list(range(8)))})


def test_a_trial_in_one_process_reads_every_row(tmp_path, dataset, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    result = tune.launch(read_own_shard, executor="threads", experiment_dir=str(tmp_path / "exp"), dataset_uri=dataset)
    row = result.results.iloc[0]
    assert (row["metric_rank"], row["metric_num_workers"]) == (0, 1) and labels_read(row) == set(range(8))


def test_a_trial_process_of_a_data_parallel_group_reads_its_own_shard(tmp_path, dataset, monkeypatch):
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        result = tune.launch(read_own_shard, executor="threads", experiment_dir=str(tmp_path / f"exp{rank}"), dataset_uri=dataset)
        row = result.results.iloc[0]
        assert row["status"] == "completed", row["error"]
        assert (row["metric_rank"], row["metric_num_workers"]) == (rank, 2)
        seen.append(labels_read(row))
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(8)) and len(seen[0]) == 4


def test_a_bad_rank_fails_the_trial_with_its_reason(tmp_path, dataset, monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = tune.launch(read_own_shard, executor="threads", experiment_dir=str(tmp_path / "exp"), dataset_uri=dataset)
    row = result.results.iloc[0]
    assert row["status"] == "failed" and "RANK=2 and WORLD_SIZE=2 in the trial's environment name no shard" in row["error"]


@pytest.mark.parametrize("environ, expected", [
    ({}, Shard(0, 1)),
    ({"RANK": "3", "WORLD_SIZE": "4"}, Shard(3, 4)),
    ({"RANK": "0", "WORLD_SIZE": "1"}, Shard(0, 1)),
])
def test_shard_from_env(environ, expected):
    assert Shard.from_env(environ) == expected


@pytest.mark.parametrize("environ", [{"RANK": "1"}, {"WORLD_SIZE": "2"}, {"RANK": "-1", "WORLD_SIZE": "2"},
                                     {"RANK": "0", "WORLD_SIZE": "0"}, {"RANK": "a", "WORLD_SIZE": "2"}])
def test_shard_from_env_rejects_what_names_no_shard(environ):
    with pytest.raises(UsageError, match="both must be set, as ints with 0 <= RANK < WORLD_SIZE"):
        Shard.from_env(environ)
