"""Failures of an experiment on the thread executor: every failed slot and every failed trial is named once."""

from __future__ import annotations

import socket

import pytest

from h3spark import tune
from h3spark.errors import JobFailedError, TrialError
from h3spark.tune._executors import ThreadExecutor


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fails(params, ctx):
    raise ValueError(f"bad config x={params['x']}")


def test_every_failed_slot_is_named_in_one_error():
    executor = ThreadExecutor()
    executor.start(2, _fails, {"address": ["127.0.0.1", closed_port()], "token": "t", "slots": 2, "metric": "accuracy"})
    with pytest.raises(JobFailedError) as caught:
        executor.join(30)
    assert str(caught.value).startswith("2 of 2 experiment slots failed:")
    assert [(f.kind, f.index, f.error_type) for f in caught.value.failures] == [
        ("slot", 0, "ConnectionRefusedError"), ("slot", 1, "ConnectionRefusedError")]
    assert all("Connection refused" in f.message and f.tail for f in caught.value.failures)


def test_a_search_whose_trials_all_fail_raises_one_error_naming_each_trial(tmp_path):
    result = tune.grid_search(_fails, {"x": [1, 2]}, executor="threads", experiment_dir=str(tmp_path))
    with pytest.raises(TrialError) as caught:
        tune.require_success(result)
    message = str(caught.value)
    assert message.startswith("no trial of the experiment succeeded (2 trials; see ")
    assert "trial 0: ValueError: bad config x=1" in message and "trial 1: ValueError: bad config x=2" in message
    assert [(f.index, f.error_type, f.message) for f in caught.value.failures] == [
        (0, "ValueError", "bad config x=1"), (1, "ValueError", "bad config x=2")]
    assert all("raise ValueError" in f.tail for f in caught.value.failures)
