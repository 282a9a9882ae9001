"""The limits on a page's connection, on a clock stepped by hand."""

from __future__ import annotations

from h3spark.web import Outbox, TokenBucket
from h3spark.web._limits import MAX_POINTS


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_takes_a_burst_then_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate_per_s=10, burst=5, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.15  # one token back (and a half)
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 100  # never more than the burst
    assert sum(bucket.take() for _ in range(20)) == 5


def test_updates_go_at_most_push_hz_times_a_second_each_holding_all_that_waited():
    clock = Clock()
    outbox = Outbox(push_hz=20, clock=clock)
    assert outbox.take() is None  # nothing waits
    sent = []
    for tick in range(200):  # 2 s of 10 ms ticks, a point and a state each tick
        outbox.add_point({"t": tick})
        outbox.set_state("actors", {"learner": tick})
        update = outbox.take()
        if update is not None:
            sent.append(update)
        clock.now += 0.01
    assert len(sent) == 40  # 20 a second
    assert sum(len(update["points"]) for update in sent) == 196  # the points of the last 4 ticks wait for the next
    assert sent[-1]["actors"] == {"learner": 195} and sent[0]["type"] == "update"
    assert outbox.waiting and len(outbox.take()["points"]) == 4 and outbox.take() is None


def test_an_update_carries_the_newest_points_when_a_page_falls_behind():
    outbox = Outbox(push_hz=1, clock=Clock())
    for index in range(MAX_POINTS + 7):
        outbox.add_point({"t": index})
    update = outbox.take()
    assert len(update["points"]) == MAX_POINTS and update["points"][0] == {"t": 7} and outbox.dropped == 7
