"""``h3spark run`` through spark-submit on the standalone cluster."""

import re

from h3spark.storage import is_published


def test_quickstart_job_runs_on_the_standalone_cluster(spark_cluster, spark_submit, tmp_path):
    done = spark_submit(spark_cluster, "jobs/run.py", "--config", "conf/digits_sklearn.yaml",
                        "--workdir", str(tmp_path), "--set", "dataset.partitions=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(rf"spark master\s+{re.escape(spark_cluster)}", done.stdout), done.stdout
    assert re.search(r"accuracy\s+0\.9\d+", done.stdout)
    assert is_published(f"file://{tmp_path}/datasets/digits")
