"""The ingest stage's bad-row check on real local Spark: one job over a wide CSV, whatever
its number of text columns, and the row it finds names the check it failed."""

from __future__ import annotations

import uuid

import pytest

from h3spark.config import SourceConfig
from h3spark.errors import DataError
from h3spark.ingest import CORRUPT_COLUMN, checked_rows, read_source

TEXT_COLUMNS = [f"t{i}" for i in range(8)]


def _wide_csv(path, bad: bytes | None = None) -> str:
    rows = [",".join([str(i), *(f"{name}v{i}" for name in TEXT_COLUMNS)]).encode() for i in range(30)]
    if bad is not None:
        rows.insert(17, bad)
    path.write_bytes(b"\n".join([",".join(["id", *TEXT_COLUMNS]).encode(), *rows]) + b"\n")
    return str(path)


def _jobs_of(spark, action):
    """Run ``action`` under a job group of its own; its result (or error) and the Spark jobs it ran."""
    sc, group = spark.sparkContext, f"checked-rows-{uuid.uuid4().hex[:8]}"
    sc.setJobGroup(group, "counting the jobs of checked_rows")
    try:
        outcome = action()
    except DataError as error:
        outcome = error
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    sc._jsc.sc().listenerBus().waitUntilEmpty()  # the status store learns of jobs from the listener bus
    return outcome, list(sc.statusTracker().getJobIdsForGroup(group))


def test_a_clean_wide_csv_is_checked_in_one_spark_job(spark, tmp_path):
    frame = read_source(spark, SourceConfig(format="csv", path=_wide_csv(tmp_path / "clean.csv")))
    assert CORRUPT_COLUMN in frame.columns and len(TEXT_COLUMNS) == 8
    checked, jobs = _jobs_of(spark, lambda: checked_rows(frame, "source clean.csv"))
    assert len(jobs) == 1 and checked.columns == ["id", *TEXT_COLUMNS] and checked.count() == 30


@pytest.mark.parametrize("bad, problem", [
    (b"17,t0,t1,t2,t3,t4,t5,t\xff6,t7", "not UTF-8 in column 't6' (the reader put U+FFFD in place of undecodable bytes), "
                                        "e.g. {'id': 17, 't0': 't0', 't1': 't1'"),
    (b"17,t0,t1", "malformed (a CSV row with more or fewer fields than the header, or broken JSON), e.g. {'id': 17"),
])
def test_a_bad_row_is_found_in_one_job_and_named_by_the_check_it_fails(spark, tmp_path, bad, problem):
    frame = read_source(spark, SourceConfig(format="csv", path=_wide_csv(tmp_path / "bad.csv", bad)))
    error, jobs = _jobs_of(spark, lambda: checked_rows(frame, "source bad.csv"))
    assert isinstance(error, DataError) and len(jobs) == 1
    assert str(error).startswith(f"source bad.csv has rows that are {problem}")
    assert str(error).endswith("fix the source, or add a preprocess: section, which sends bad rows to quarantine with a reason.")
