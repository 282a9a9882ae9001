"""spark-submit jobs: the master given to spark-submit wins over the config's; jobs/train.py trains,
resumes and refuses a model with fewer classes than the data's labels."""

import importlib.util
import re

from tests.conftest import require

QUICKSTART = ("jobs/run.py", "--config", "conf/digits_sklearn.yaml", "--set", "dataset.partitions=2")


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


def test_spark_submit_train_job_trains_resumes_and_refuses_labels_beyond_the_classes(spark_submit, tmp_path):
    from tests.integration.spark.train.conftest import publish_blobs

    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    train = ("jobs/train.py", "--config", "conf/train_mxnet_example.yaml", "--workdir", str(tmp_path / "work"),
             "--set", f"dataset.uri={publish_blobs(tmp_path)}", "--set", "training.checkpoint_interval=8")
    done = spark_submit("local[2]", *train, "--set", "training.params.classes=4", "--set", "training.epochs=1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "h3spark train train_mxnet_example: done" in done.stdout
    assert re.search(r"run\s+1, from step 0", done.stdout) and re.search(r"steps\s+16\b", done.stdout), done.stdout
    resumed = spark_submit("local[2]", *train, "--resume", "--set", "training.params.classes=4", "--set", "training.epochs=2")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert re.search(r"run\s+1, resumed from step 16", resumed.stdout) and re.search(r"steps\s+32\b", resumed.stdout)
    few = spark_submit("local[2]", *train, "--set", "training.params.classes=3")
    assert few.returncode == 2
    assert "run from 0 to 3, but training.params.classes is 3" in few.stdout + few.stderr
