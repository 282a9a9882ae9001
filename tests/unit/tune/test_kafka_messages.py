"""Tune's Kafka channel without a broker: what each record on the report and control topics
becomes. Nothing malformed vanishes: the driver refuses and counts it, the trial logs it."""

import json
import logging

import pytest

from h3spark.errors import JobFailedError
from h3spark.tune._dispatcher import Dispatcher
from h3spark.tune._kafka import answer_record, stop_in_reply
from h3spark.tune._search import Trial

RUN = "run-1"
TOPIC = "metrics"


@pytest.fixture
def dispatcher():
    """A dispatcher whose trial 0 is running (taken by a slot over its socket)."""
    from h3spark.tune._wire import Connection

    made = Dispatcher("127.0.0.1", lambda trial, slot: None, lambda trial, record: None, lambda message: None)
    made.submit([Trial(0, {})])
    slot = Connection(made.address, made.token)
    slot.request({"op": "next", "slot": 0, "result": None})
    yield made
    slot.close()
    made.close()


def _report(**fields):
    return json.dumps({"run_id": RUN, "op": "report", "trial_id": 0, "step": 1, "metrics": {"accuracy": 0.5},
                       "score": 0.5, **fields}).encode()


def test_a_good_report_is_answered(dispatcher):
    assert answer_record(_report(), RUN, dispatcher, TOPIC) == {"run_id": RUN, "trial_id": 0, "step": 1, "stop": False}
    assert dispatcher.rejected == 0


def test_another_runs_report_is_left_alone(dispatcher):
    assert answer_record(_report(run_id="run-2"), RUN, dispatcher, TOPIC) is None
    assert dispatcher.rejected == 0


@pytest.mark.parametrize("raw, expected", [
    (b"\xff not json", "a record that is not JSON"),
    (b"[1, 2]", "a record that is a JSON list, not an object, on metrics"),
    (json.dumps({"op": "report", "trial_id": 0}).encode(), "a record without a run_id on metrics trial=0"),
    (b'{"run_id": "run-1", "op": "report", "trial_id": 0, "step": 1, "metrics": {}, "score": NaN}', "a record that is not JSON"),
])
def test_a_record_that_names_no_trial_to_answer_is_refused_and_counted(dispatcher, raw, expected):
    assert answer_record(raw, RUN, dispatcher, TOPIC) is None
    assert dispatcher.rejected == 1 and dispatcher.problems[0].startswith(expected)


def test_a_malformed_report_of_this_run_is_answered_with_the_problem(dispatcher):
    reply = answer_record(_report(score="high"), RUN, dispatcher, TOPIC)
    assert reply == {"run_id": RUN, "trial_id": 0, "step": 1, "error": "score: Input should be a valid number (got 'high')"}
    assert dispatcher.problems == ["score: Input should be a valid number (got 'high') (a report on metrics trial=0 step=1)"]
    assert answer_record(_report(step="1"), RUN, dispatcher, TOPIC) is None  # no (trial, step) a trial waits on
    assert dispatcher.rejected == 2 and "trial=0 step='1'" in dispatcher.problems[1]


def test_a_report_for_a_trial_that_is_not_running_is_refused(dispatcher):
    reply = answer_record(_report(trial_id=7), RUN, dispatcher, TOPIC)
    assert reply["error"] == "a report for trial 7, which is not running" and dispatcher.rejected == 1


def _reply(**fields):
    return json.dumps({"run_id": RUN, "trial_id": 0, "step": 1, "stop": True, **fields}).encode()


def test_the_trial_takes_its_own_answer_and_ignores_the_others(caplog):
    with caplog.at_level(logging.WARNING, logger="h3spark.tune._kafka"):
        assert stop_in_reply(_reply(), RUN, 0, 1, "metrics.control") is True
        assert stop_in_reply(_reply(trial_id=1), RUN, 0, 1, "metrics.control") is None
        assert stop_in_reply(_reply(run_id="run-2"), RUN, 0, 1, "metrics.control") is None
    assert caplog.records == []


@pytest.mark.parametrize("raw, expected", [
    (b"garbage", "dropped a reply: not JSON (Expecting value: line 1 column 1 (char 0)) on metrics.control trial=0 step=1"),
    (_reply(stop="yes"), "dropped a reply whose 'stop' is 'yes', not true or false, on metrics.control trial=0 step=1"),
])
def test_a_malformed_answer_is_logged_with_the_trial(caplog, raw, expected):
    with caplog.at_level(logging.WARNING, logger="h3spark.tune._kafka"):
        assert stop_in_reply(raw, RUN, 0, 1, "metrics.control") is None
    assert [record.getMessage() for record in caplog.records] == [expected]


def test_a_refused_report_fails_the_trial_with_the_drivers_reason():
    with pytest.raises(JobFailedError, match="the experiment driver refused the report of trial 0 at step 1: score: bad"):
        stop_in_reply(_reply(error="score: bad"), RUN, 0, 1, "metrics.control")
