"""spark-submit's master wins over the config's."""

import re

QUICKSTART = ("jobs/run.py", "--config", "conf/quickstart.yaml", "--set", "dataset.partitions=2")


def test_spark_submit_master_is_not_overridden_by_the_config(spark_submit, tmp_path):
    done = spark_submit("local[1]", *QUICKSTART, "--workdir", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"spark master\s+local\[1\]", done.stdout), done.stdout
    assert re.search(r"accuracy\s+0\.9\d+", done.stdout)


def test_spark_submit_job_with_a_bad_config_exits_2(spark_submit, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntraning: {}\n")
    done = spark_submit("local[1]", "jobs/run.py", "--config", str(bad))
    assert done.returncode == 2
    # spark-submit merges the Python process's stderr into its own stdout
    assert "line 2  traning: unknown key. Did you mean 'training'?" in done.stdout + done.stderr
