"""Limits on one page's connection: a token bucket on what it sends, and the updates pushed to it.

    >>> bucket = TokenBucket(rate_per_s=400, burst=800)
    >>> bucket.take()                        # False once the page sends faster than the rate allows
    True
    >>> outbox = Outbox(push_hz=20)
    >>> outbox.add_point({"actor": "learner", "loss": 0.4}); outbox.set_state("actors", {...})
    >>> outbox.due(), outbox.take()          # at most push_hz updates a second, each holding all that waited

The clock is a parameter, so tests step it by hand.
"""

from __future__ import annotations

import time
from typing import Callable

MAX_POINTS = 500  # points one update carries at most (the oldest waiting ones are dropped first)


class TokenBucket:
    """``rate_per_s`` messages a second on average, ``burst`` at once."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate_per_s, self.burst, self._clock = rate_per_s, burst, clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class Outbox:
    """Updates waiting for a page: metric points (in order) and states (the newest of each key wins).

    ``take`` hands them over as one update no sooner than ``1 / push_hz`` after the previous one.
    """

    def __init__(self, push_hz: float, clock: Callable[[], float] = time.monotonic):
        self.interval_s = 1.0 / push_hz
        self._clock = clock
        self._points: list[dict] = []
        self._states: dict[str, object] = {}
        self._sent_at = -float("inf")
        self.dropped = 0

    def add_point(self, point: dict) -> None:
        self._points.append(point)
        if len(self._points) > MAX_POINTS:
            self.dropped += len(self._points) - MAX_POINTS
            del self._points[:len(self._points) - MAX_POINTS]

    def set_state(self, key: str, value: object) -> None:
        self._states[key] = value

    @property
    def waiting(self) -> bool:
        return bool(self._points or self._states)

    def wait_s(self) -> float:
        """Seconds until an update may go (0: now)."""
        return max(0.0, self._sent_at + self.interval_s - self._clock())

    def due(self) -> bool:
        return self.waiting and self.wait_s() == 0.0

    def take(self) -> dict | None:
        """The update to send now, or None (nothing waits, or the last one went less than an interval ago)."""
        if not self.due():
            return None
        update = {"type": "update", "points": self._points, **self._states}
        self._points, self._states = [], {}
        self._sent_at = self._clock()
        return update
