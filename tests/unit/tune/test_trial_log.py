"""The append-only trial log: resume rules and damaged or mismatched logs."""

import pytest

from h3spark.errors import ConfigError, StorageError
from h3spark.tune import Trial
from h3spark.tune._log import TrialLog


def test_only_final_statuses_count_as_done_and_the_latest_record_wins(tmp_path):
    log = TrialLog(str(tmp_path))
    log.check_header({"search": "grid", "metric": "accuracy", "direction": "max", "seed": None})
    for trial_id, status in ((0, "completed"), (1, "cancelled"), (2, "failed"), (3, "timeout"), (1, "stopped")):
        log.append({"event": "finished", "trial_id": trial_id, "params": {}, "status": status})
    log.append({"event": "finished", "trial_id": 4, "params": {}, "status": "cancelled"})
    reread = TrialLog(str(tmp_path))
    assert sorted(reread.final_records()) == [0, 1, 2, 3]
    assert reread.final_records()[1]["status"] == "stopped"


def test_a_torn_last_line_is_ignored_but_a_damaged_middle_line_is_an_error(tmp_path):
    path = tmp_path / "trials.jsonl"
    path.write_text('{"event": "finished", "trial_id": 0, "params": {}, "status": "completed"}\n{"event": "fini')
    assert list(TrialLog(str(tmp_path)).final_records()) == [0]
    path.write_text('{"event": "fini\n{"event": "finished", "trial_id": 0, "params": {}, "status": "completed"}\n')
    with pytest.raises(StorageError, match="line 1 is not JSON; the trial log is damaged"):
        TrialLog(str(tmp_path))


def test_a_resume_with_other_settings_or_params_is_refused(tmp_path):
    log = TrialLog(str(tmp_path))
    log.check_header({"search": "random", "metric": "accuracy", "direction": "max", "seed": 1})
    log.append({"event": "started", "trial_id": 0, "params": {"x": 1}})
    with pytest.raises(ConfigError, match="made with direction='max', not direction='min'"):
        TrialLog(str(tmp_path)).check_header({"search": "random", "metric": "accuracy", "direction": "min", "seed": 1})
    with pytest.raises(ConfigError, match=r"trial 0 ran with params \{'x': 1\}, but the search now gives \{'x': 2\}"):
        TrialLog(str(tmp_path)).check_params([Trial(0, {"x": 2})])
    TrialLog(str(tmp_path)).check_params([Trial(0, {"x": 1}), Trial(1, {"x": 5})])
