"""Early stopping: decide from intermediate reports whether a trial should stop.

    >>> rule = MedianStoppingRule(grace_steps=2, min_trials=3)

A rule sees scores (higher is better; the experiment negates minimised metrics) and
answers each report at once, so a stop reaches the trial in the reply to that report.
"""

from __future__ import annotations

import statistics
import threading

from h3spark.errors import ConfigError


class StoppingRule:
    """Never stops a trial."""

    def observe(self, trial_id: int, step: int, score: float) -> bool:
        """Record a report; True if the trial should stop now."""
        return False


class MedianStoppingRule(StoppingRule):
    """Stop a trial whose best score so far is below the median of the other trials'
    best scores up to the same step (Golovin et al., Google Vizier, 2017).

    ``grace_steps``: steps before which no trial is stopped; ``min_trials``: how many
    other trials must have reached the step before the median is trusted.
    """

    def __init__(self, grace_steps: int = 1, min_trials: int = 3):
        for parameter, value, low in (("grace_steps", grace_steps, 0), ("min_trials", min_trials, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError("experiment.early_stopping", [
                    f"The '{parameter}' parameter of MedianStoppingRule must be an int >= {low}. Got {value!r} instead."])
        self.grace_steps, self.min_trials = grace_steps, min_trials
        self._history: dict[int, dict[int, float]] = {}
        self._lock = threading.Lock()

    def observe(self, trial_id, step, score):
        with self._lock:
            self._history.setdefault(trial_id, {})[step] = score
            if step < self.grace_steps:
                return False
            others = [self._best_until(history, step) for other, history in self._history.items()
                      if other != trial_id and max(history) >= step]
            if len(others) < self.min_trials:
                return False
            return self._best_until(self._history[trial_id], step) < statistics.median(others)

    @staticmethod
    def _best_until(history: dict[int, float], step: int) -> float:
        return max(score for at, score in history.items() if at <= step)


def stopping_rule(name: str | None, **options) -> StoppingRule:
    """Build a rule by name ('median' or None)."""
    if name in (None, "none"):
        return StoppingRule()
    if name == "median":
        return MedianStoppingRule(**options)
    raise ConfigError("experiment.early_stopping.rule", [f"must be 'median' or 'none'. Got {name!r} instead."])
