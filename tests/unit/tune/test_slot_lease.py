"""The slot's side of a trial's lease, and what it accepts as the optimised metric."""

import multiprocessing
import os
import re
import time

import numpy as np
import pytest

from h3spark.errors import JobFailedError
from h3spark.tune._slot import _checked, run_trial


def _sleeps(params, ctx):
    time.sleep(600)


def _setup(tmp_path, **fields):
    return {"address": ["127.0.0.1", 1], "token": "unused", "experiment_dir": str(tmp_path), "metric": "accuracy",
            "direction": "max", "timeout_s": None, "slots": 1, **fields}


def test_the_slot_renews_the_lease_and_kills_a_trial_the_driver_gave_up(tmp_path):
    answers = iter([True, True, False])
    asked = []

    def renew(trial_id):
        asked.append(trial_id)
        return next(answers)

    record = run_trial(0, {"trial_id": 4, "params": {}}, _sleeps, _setup(tmp_path, lease_s=0.08), [], renew)
    assert asked == [4, 4, 4]
    assert record["status"] == "failed" and record["error"] == "killed: the driver gave this trial up (its lease expired)"


def test_the_time_limit_still_holds_while_the_lease_is_renewed(tmp_path):
    record = run_trial(0, {"trial_id": 1, "params": {}}, _sleeps, _setup(tmp_path, lease_s=0.08, timeout_s=0.3), [],
                       lambda trial_id: True)
    assert record["status"] == "timeout" and "stopped after timeout_s=0.3" in record["error"]


@pytest.mark.parametrize("value", [0.5, 3, np.float32(0.5), np.int64(3), np.array(0.5), float("nan")])
def test_a_numeric_metric_is_accepted(value):
    assert _checked({"accuracy": value, "note": "x"}, "accuracy")["note"] == "x"


@pytest.mark.parametrize("value, shown", [("high", "'high' (str)"), (True, "True (bool)"), ([0.5], "[0.5] (list)"),
                                          (None, "None (NoneType)")])
def test_a_metric_that_is_not_a_number_is_an_error_naming_it(value, shown):
    with pytest.raises(TypeError, match=re.escape(f"train_fn returned accuracy={shown}; the metric must be a number")):
        _checked({"accuracy": value}, "accuracy")


def _sleeps_after_saying_where(params, ctx):
    import os

    with open(params["pid_file"] + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.rename(params["pid_file"] + ".tmp", params["pid_file"])
    time.sleep(600)


@pytest.mark.parametrize("error", [ConnectionError("the experiment driver closed the connection"), OSError("no route"),
                                   JobFailedError("the experiment driver refused a 'renew' message: gone")])
def test_a_failing_renew_kills_and_reaps_the_trial_before_the_error_goes_on(tmp_path, error):
    pid_file = tmp_path / "trial.pid"

    def renew(trial_id):
        deadline = time.monotonic() + 30
        while not pid_file.exists():  # the trial runs: it wrote its pid
            assert time.monotonic() < deadline, "the trial never started"
            time.sleep(0.01)
        raise error

    with pytest.raises(type(error), match=re.escape(str(error))):
        run_trial(0, {"trial_id": 2, "params": {"pid_file": str(pid_file)}}, _sleeps_after_saying_where,
                  _setup(tmp_path, lease_s=0.08), [], renew)
    pid = int(pid_file.read_text())
    assert pid not in [child.pid for child in multiprocessing.active_children()]
    assert not os.path.exists(f"/proc/{pid}")  # killed and reaped: not even a zombie is left
