"""Counting task slots: in-process masters answer at once, masters with executors wait for them."""

from __future__ import annotations

import pytest

from h3spark.spark import _slots


class RegisteringExecutors:
    """A SparkContext stand-in whose slot count grows by one executor (2 slots) per poll."""

    def __init__(self, master: str):
        self.master, self.polls = master, 0


@pytest.fixture
def fake_count(monkeypatch):
    def concurrent_tasks(sc):
        sc.polls += 1
        return 0 if sc.polls == 1 else 2

    monkeypatch.setattr(_slots, "_concurrent_tasks", concurrent_tasks)
    monkeypatch.setattr(_slots, "_POLL_S", 0.0)


@pytest.mark.parametrize("master", ["local-cluster[1,2,1024]", "spark://127.0.0.1:7077", "yarn"])
def test_masters_with_executors_wait_for_them_to_register(fake_count, master):
    assert _slots.task_slots(RegisteringExecutors(master), needed=1, wait_s=60) == 2


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]"])
def test_in_process_masters_answer_at_once(fake_count, master):
    sc = RegisteringExecutors(master)
    assert _slots.task_slots(sc, needed=1, wait_s=60) == 0 and sc.polls == 1
