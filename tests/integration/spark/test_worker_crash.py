"""A Python worker that dies in a task (out of memory, a native crash, os._exit) is a job failure saying so."""

from __future__ import annotations

import os

import pytest

from h3spark.errors import JobFailedError
from h3spark.spark import spark_errors


def _dies(batches):
    for batch in batches:
        os._exit(1)  # as the kernel's OOM killer or a segfault would end it: no Python exception
        yield batch


def _expect_crash(run) -> None:
    with pytest.raises(JobFailedError) as caught:
        with spark_errors("a preprocessing task"):
            run()
    message = str(caught.value)
    assert message.startswith("a preprocessing task failed: the Python worker crashed (task ")
    assert "out of memory? a native crash such as a segfault? os._exit?" in message
    assert "EOFException" not in message and "\tat " not in message and caught.value.exit_code == 1


def test_a_map_in_arrow_task_whose_worker_dies_is_a_job_failure(spark):
    frame = spark.range(10)
    _expect_crash(lambda: frame.mapInArrow(_dies, frame.schema).collect())


def test_an_rdd_task_whose_worker_dies_is_a_job_failure(spark):
    _expect_crash(lambda: spark.sparkContext.parallelize(range(4), 2).mapPartitions(_dies).collect())
