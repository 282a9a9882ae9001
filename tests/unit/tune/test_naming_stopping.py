"""Trial names and the median stopping rule."""

import re

import pytest

from h3spark.errors import ConfigError
from h3spark.tune import MedianStoppingRule, trial_dirname
from h3spark.tune._stopping import stopping_rule


def test_trial_names_are_readable_stable_and_safe():
    name = trial_dirname(7, {"lr": 0.01, "hidden": 128})
    assert re.fullmatch(r"0007_lr=0\.01,hidden=128_[0-9a-f]{8}", name)
    assert name == trial_dirname(7, {"lr": 0.01, "hidden": 128})
    assert name[-8:] == trial_dirname(7, {"hidden": 128, "lr": 0.01})[-8:]  # the hash ignores key order


def test_trial_names_are_bounded_and_unsafe_characters_replaced():
    long = trial_dirname(3, {"path": "a/b\\c d:e*" * 30, "x": 1})
    assert len(long) <= 96 and "/" not in long and " " not in long and "\\" not in long
    other = trial_dirname(3, {"path": "a/b\\c d:e*" * 30, "x": 2})
    assert long[:-9] == other[:-9] and long != other  # the cut readable part is equal; the hash differs


def test_median_rule_stops_a_laggard_once_enough_trials_reached_the_step():
    rule = MedianStoppingRule(grace_steps=1, min_trials=2)
    for trial in (1, 2, 3):
        assert not rule.observe(trial, 0, 0.9)
        assert not rule.observe(trial, 1, 0.9)
    assert not rule.observe(4, 0, 0.1)  # within the grace period
    assert rule.observe(4, 1, 0.2)
    assert not rule.observe(5, 1, 0.95)


def test_median_rule_waits_for_min_trials():
    rule = MedianStoppingRule(grace_steps=0, min_trials=3)
    rule.observe(1, 0, 1.0)
    rule.observe(2, 0, 1.0)
    assert not rule.observe(3, 0, 0.0)


def test_stopping_options_are_checked():
    with pytest.raises(ConfigError, match="The 'min_trials' parameter of MedianStoppingRule must be an int >= 1. Got 0 instead."):
        MedianStoppingRule(min_trials=0)
    with pytest.raises(ConfigError, match="must be 'median' or 'none'. Got 'hyperband' instead."):
        stopping_rule("hyperband")
    assert not stopping_rule(None).observe(1, 5, -1e9)
