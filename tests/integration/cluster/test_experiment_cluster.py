"""The experiment: section through spark-submit on the standalone cluster: the same code as local."""

import json
import re


def test_experiment_runs_on_the_standalone_cluster_without_task_retries(spark_cluster, spark_submit, tmp_path):
    done = spark_submit(spark_cluster, "jobs/run.py", "--config", "conf/experiment_example.yaml", "--workdir", str(tmp_path),
                        "--set", "spark.master=" + spark_cluster,
                        "--set", "experiment.space={C: [0.1, 1.0], solver: [lbfgs, no_such_solver]}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(rf"spark master\s+{re.escape(spark_cluster)}", done.stdout), done.stdout
    exp = tmp_path / "experiments" / "experiment_example"
    records = {record["trial_id"]: record for record in json.loads((exp / "results.json").read_text())}
    assert [records[i]["status"] for i in range(4)] == ["completed", "failed", "completed", "failed"]
    assert "no_such_solver" in records[1]["error"]
    events = [json.loads(line) for line in (exp / "trials.jsonl").read_text().splitlines()]
    assert sorted(e["trial_id"] for e in events if e["event"] == "started") == [0, 1, 2, 3]  # no Spark retries
    assert json.loads((exp / "best.json").read_text())["best"]["metric_accuracy"] > 0.85


def test_experiment_job_resumes_and_extends_on_the_cluster(spark_cluster, spark_submit, tmp_path):
    first = spark_submit(spark_cluster, "jobs/run.py", "--config", "conf/experiment_example.yaml", "--workdir", str(tmp_path),
                         "--set", "experiment.space.C=[0.1]")
    assert first.returncode == 0, first.stderr[-3000:]
    again = spark_submit(spark_cluster, "jobs/experiment.py", "--config", "conf/experiment_example.yaml",
                         "--workdir", str(tmp_path), "--set", "experiment.space.C=[0.1, 1.0]")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "trials: 2 completed" in again.stdout
    log = (tmp_path / "experiments" / "experiment_example" / "trials.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["trial_id"] for line in log if json.loads(line)["event"] == "started") == [0, 1]
