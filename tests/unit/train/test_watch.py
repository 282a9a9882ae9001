"""The driver's wait after a first failure (H3SPARK_FAILURE_GRACE_S), without tasks."""

from __future__ import annotations

import queue
import time

import pytest

from h3spark.errors import UsageError
from h3spark.train._watch import FAILURE_GRACE_ENV, _Watch, watch_events


def _failed_long_ago(seconds_ago: float) -> _Watch:
    watch = _Watch(2)
    watch.failures[0] = "task 0's failure"
    watch.first_failure_at = time.monotonic() - seconds_ago
    return watch


def test_the_grace_after_a_first_failure_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(FAILURE_GRACE_ENV, raising=False)
    assert _failed_long_ago(10).settled()  # the default 3 s are over
    monkeypatch.setenv(FAILURE_GRACE_ENV, "60")
    waiting = _failed_long_ago(10)
    assert waiting.grace_s == 60.0 and not waiting.settled()  # task 1 may still report
    waiting.done.add(1)
    assert waiting.settled()  # every task accounted for: no need to wait out the grace
    monkeypatch.setenv(FAILURE_GRACE_ENV, "0.5")
    assert _failed_long_ago(1).settled()


@pytest.mark.parametrize("value", ["three", "", "-1", "nan", "inf"])
def test_a_bad_grace_is_a_usage_error_naming_the_variable_and_cancels_the_started_tasks(monkeypatch, value):
    monkeypatch.setenv(FAILURE_GRACE_ENV, value)
    cancelled = []
    with pytest.raises(UsageError) as caught:
        watch_events(queue.Queue(), lambda: True, 2, 30.0, print, False, lambda: cancelled.append(True), str)
    assert str(caught.value) == (f"The environment variable H3SPARK_FAILURE_GRACE_S must be a number of seconds in the "
                                 f"range [0, inf). Got {value!r} instead. Set it to e.g. 60, or unset it for the default 3 s.")
    assert cancelled == [True]
