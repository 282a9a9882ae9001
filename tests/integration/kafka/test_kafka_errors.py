"""Reading a Kafka topic that does not exist: one clear error from spark-submit, translated by exception type."""

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_missing_topic_is_a_data_error_saying_what_to_check(kafka_bootstrap, workdir):
    topic = f"missing-{uuid.uuid4().hex[:8]}"
    config = workdir / "kafka.yaml"
    config.write_text(textwrap.dedent(f"""
        name: kafka-missing
        spark: {{master: "local[2]"}}
        source: {{format: kafka, topic: {topic}, bootstrap_servers: "{kafka_bootstrap}"}}
        dataset: {{uri: datasets/events}}
        preprocess:
          steps:
            - {{kind: assemble, columns: [x]}}
    """))
    from h3spark.services import ensure_spark_kafka_package

    package = ensure_spark_kafka_package()
    submit = shutil.which("spark-submit", path=str(Path(sys.executable).parent)) or "spark-submit"
    done = subprocess.run([submit, "--master", "local[2]", "--packages", package, str(ROOT / "jobs/preprocess.py"),
                           "--config", str(config), "--workdir", str(workdir)], capture_output=True, text=True,
                          timeout=280, env={**os.environ, "PYSPARK_PYTHON": sys.executable}, cwd=ROOT)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "h3spark: " in line]
    assert len(lines) == 1, lines
    assert lines[0].endswith(f"h3spark: reading Kafka topic '{topic}' from {kafka_bootstrap} failed: "
                             "UnknownTopicOrPartitionException: This server does not host this topic-partition. "
                             "Is the broker up (h3spark services up kafka), and does the topic exist?")
    assert not (workdir / "datasets" / "events").exists()
