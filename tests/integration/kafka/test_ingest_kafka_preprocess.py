"""A batch read of a Kafka topic, preprocessed by spark-submit jobs/preprocess.py (with the Kafka package)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pyarrow.parquet as pq

from h3spark.storage import local_path, read_manifest, resolve_published, resolve_uri

ROOT = Path(__file__).resolve().parents[3]


def _produce(bootstrap: str, topic: str, messages: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for message in messages:
        producer.send(topic, message)
    producer.flush()
    producer.close()


def test_kafka_topic_to_dataset_with_malformed_messages_quarantined(kafka_bootstrap, workdir):
    topic = f"preprocess-{uuid.uuid4().hex[:8]}"
    good = [json.dumps({"x": float(i), "city": "ab"[i % 2], "label": i % 2}).encode() for i in range(40)]
    _produce(kafka_bootstrap, topic, good + [b"{not json"])
    config = workdir / "kafka.yaml"
    config.write_text(textwrap.dedent(f"""
        name: kafka-pre
        spark: {{master: "local[2]"}}
        source: {{format: kafka, topic: {topic}, bootstrap_servers: "{kafka_bootstrap}"}}
        dataset: {{uri: datasets/events}}
        preprocess:
          max_bad_fraction: 0.1
          steps:
            - {{kind: standard_scale, columns: [x]}}
            - {{kind: one_hot, columns: [city]}}
            - {{kind: assemble, columns: [x, city]}}
    """))
    from h3spark.services import ensure_spark_kafka_package

    package = ensure_spark_kafka_package()  # pyspark 4.3.0's own Kafka jar is not on Maven Central
    submit = shutil.which("spark-submit", path=str(Path(sys.executable).parent)) or "spark-submit"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([submit, "--master", "local[2]", "--packages", package, str(ROOT / "jobs/preprocess.py"),
                           "--config", str(config), "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=280, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows quarantined  1" in done.stdout
    uri = resolve_uri("datasets/events", workdir)
    manifest = read_manifest(uri)
    assert (manifest["rows"], manifest["rows_quarantined"]) == (40, 1)
    quarantine = pq.read_table(local_path(resolve_published(resolve_uri("datasets/events_quarantine", workdir)))).to_pylist()
    assert quarantine[0]["reason"].startswith("malformed record (") and "{not json" in quarantine[0]["row"]
