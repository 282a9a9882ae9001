"""The Spark barrier launcher on local Spark: ranks failing together are raised once, each one named."""

from __future__ import annotations

import sys
import time
import uuid

import pytest

from h3spark.errors import JobFailedError
from h3spark.train import distributed, launch
from h3spark.train._procs import marked_processes


def no_orphans(launch_id: str, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while marked_processes(launch_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    return marked_processes(launch_id) == []


def fail_on_every_rank():
    import os
    import time

    # every rank raises only once all ranks got here, so the failures really come together
    folder, world_size = os.environ["H3SPARK_TEST_BARRIER"], int(os.environ["WORLD_SIZE"])
    open(os.path.join(folder, os.environ["RANK"]), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(folder)) < world_size and time.monotonic() < deadline:
        time.sleep(0.01)
    print(f"rank {os.environ['RANK']} about to fail", flush=True)
    raise RuntimeError(f"boom from rank {os.environ['RANK']}")


def test_ranks_failing_together_are_raised_once_naming_every_rank_with_type_and_tail(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("H3SPARK_FAILURE_GRACE_S", "60")  # the driver waits for both failures however busy the host
    launch_id = uuid.uuid4().hex
    with pytest.raises(JobFailedError) as caught:
        distributed(fail_on_every_rank, num_workers=2, framework="torch", spark=spark,
                    env={"H3SPARK_LAUNCH_ID": launch_id, "H3SPARK_TEST_BARRIER": str(tmp_path)}, echo=False)
    message, failures = str(caught.value), caught.value.failures
    assert message.startswith("the launch failed on 2 of 2 tasks:") and "\tat org.apache" not in message
    assert [(f.kind, f.index, f.error_type, f.message) for f in failures] == [
        ("worker", 0, "RuntimeError", "boom from rank 0"), ("worker", 1, "RuntimeError", "boom from rank 1")]
    assert all(f"rank {f.index} about to fail" in f.tail and f.exit == "exited with code 1" for f in failures)
    assert no_orphans(launch_id)


def test_one_failing_rank_is_named_and_the_rank_blocked_on_it_is_cancelled(spark):
    launch_id = uuid.uuid4().hex
    script = ("import os, sys, time\n"
              "if os.environ['RANK'] == '1':\n    print('rank 1 gives up', flush=True); sys.exit(3)\n"
              "time.sleep(120)\n")
    started = time.monotonic()
    with pytest.raises(JobFailedError) as caught:
        launch([sys.executable, "-c", script], num_workers=2, kind="torch", spark=spark, echo=False,
               env={"H3SPARK_LAUNCH_ID": launch_id})
    assert time.monotonic() - started < 60
    assert str(caught.value).startswith("the launch failed on 1 of 2 tasks:")
    assert [(f.kind, f.index, f.exit) for f in caught.value.failures] == [("worker", 1, "exited with code 3")]
    assert "rank 1 gives up" in caught.value.failures[0].tail
    assert no_orphans(launch_id)
