"""Failures of an experiment on local[2] Spark: every failed slot and every failed trial is named, in one error."""

from __future__ import annotations

import socket

import pytest

from h3spark import tune
from h3spark.errors import JobFailedError, TrialError
from h3spark.tune._executors import SparkExecutor


def _fails(params, ctx):
    raise ValueError(f"bad config x={params['x']}")


def test_every_failed_slot_is_named_in_one_error(spark):
    with socket.socket() as sock:  # a port nobody listens on: each slot's connection to the driver is refused
        sock.bind(("127.0.0.1", 0))
        address = ["127.0.0.1", sock.getsockname()[1]]
    executor = SparkExecutor(spark)
    executor.start(2, _fails, {"address": address, "token": "t", "slots": 2, "metric": "accuracy"})
    with pytest.raises(JobFailedError) as caught:
        executor.join(120)
    assert str(caught.value).startswith("2 of 2 experiment slots failed:")
    assert [(f.kind, f.index, f.error_type) for f in caught.value.failures] == [
        ("slot", 0, "ConnectionRefusedError"), ("slot", 1, "ConnectionRefusedError")]
    assert all(f.host and "Connection refused" in f.message for f in caught.value.failures)


def test_a_search_whose_trials_all_fail_raises_one_error_naming_each_trial(spark, tmp_path):
    result = tune.grid_search(_fails, {"x": [1, 2]}, spark=spark, experiment_dir=str(tmp_path / "exp"))
    with pytest.raises(TrialError) as caught:
        tune.require_success(result)
    assert [(f.kind, f.index, f.error_type, f.message) for f in caught.value.failures] == [
        ("trial", 0, "ValueError", "bad config x=1"), ("trial", 1, "ValueError", "bad config x=2")]
    assert "trial 0: ValueError: bad config x=1" in str(caught.value)
    assert "trial 1: ValueError: bad config x=2" in str(caught.value)
