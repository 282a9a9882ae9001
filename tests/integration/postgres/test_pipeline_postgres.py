"""Issue 16's pipeline against the real services: a PostgreSQL table is read by Spark's JDBC source, checked
by expectations (a failing run publishes nothing and lists every violation), preprocessed and published, a
model is trained on it (h3spark train, torch), its predictions go back into a table, and 'h3spark serve'
answers for the same model over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from h3spark.config import H3SparkConfig
from h3spark.errors import ExpectationError

PIXELS = [f"p{index}" for index in range(64)]
FAILING = {"rows": {"min": 5000},
           "columns": {"label": {"type": "integer", "allowed": list(range(9))}, "p10": {"max": 10}, "id": {"unique": True}}}
VIOLATIONS = ["rows.min: the input has 1797 rows; bound: at least 5000",
              "columns.label.allowed: 180 of 1797 values of 'label' are not allowed (the smallest: 9 x 180)",
              "columns.p10.max: the largest value of 'p10' is 16"]


@pytest.fixture
def digits_table(jdbc_spark, postgres, table):
    """The digits as a table: id, label and the 64 pixels as double columns."""
    import pandas as pd

    from h3spark.config import JdbcSinkConfig
    from h3spark.ingest import load_bundled
    from h3spark.storage import write_jdbc

    digits = load_bundled("digits")
    pixels = np.array(digits.column("features").to_pylist(), dtype=np.float64)
    frame = pd.DataFrame(pixels, columns=PIXELS)
    frame.insert(0, "label", digits.column("label").to_numpy())
    frame.insert(0, "id", np.arange(len(frame)))
    write_jdbc(jdbc_spark.createDataFrame(frame), JdbcSinkConfig(**postgres.config(table=table, mode="overwrite")))
    return table


def _config_data(postgres, source_table: str, validate: dict | None = None, **sections) -> dict:
    jdbc = postgres.config(table=source_table, partition_column="id", num_partitions=2)
    steps = [{"kind": "standard_scale", "columns": PIXELS},
             {"kind": "split", "fractions": {"train": 0.8, "test": 0.2}, "seed": 3, "key": ["id"]},
             {"kind": "assemble", "columns": PIXELS}]
    return {"name": "pg-digits", "source": {"format": "jdbc", "jdbc": jdbc}, "dataset": {"uri": "datasets/pg_digits"},
            "preprocess": {"label": "label", "keep": ["id"], "steps": steps, **({"validate": validate} if validate else {})},
            **sections}


def _config(postgres, source_table: str, validate: dict | None = None, **sections) -> H3SparkConfig:
    return H3SparkConfig.model_validate(_config_data(postgres, source_table, validate, **sections))


def test_a_failing_check_publishes_nothing_and_lists_every_violation(jdbc_spark, postgres, digits_table, workdir):
    from h3spark.preprocess import preprocess

    with pytest.raises(ExpectationError) as failed:
        preprocess(_config(postgres, digits_table, FAILING), workdir=str(workdir), spark=jdbc_spark)
    message = str(failed.value)
    for violation in VIOLATIONS:
        assert violation in message
    assert "columns.id.unique" not in message  # the one that holds is not listed
    assert not (workdir / "datasets" / "pg_digits").exists()


def test_table_to_checks_to_training_to_predictions_in_a_table_to_a_served_model(jdbc_spark, postgres, digits_table,
                                                                                 workdir):
    from h3spark.preprocess import preprocess
    from h3spark.serve import predict

    passing = {"rows": {"min": 1000}, "columns": {"label": {"type": "integer", "allowed": list(range(10))},
                                                  "id": {"unique": True}, "p10": {"max": 16}}}
    prepared = preprocess(_config(postgres, digits_table, passing), workdir=str(workdir), spark=jdbc_spark)
    assert prepared.rows_out == 1797 and prepared.expectations["failed"] == 0

    training = {"engine": "torch", "model": "mlp", "params": {"hidden": [32], "classes": 10}, "workers": 1,
                "launcher": "local", "optimizer": "sgd", "momentum": 0.9, "lr": 0.05, "batch_size": 64, "epochs": 6,
                "seed": 1, "train_split": "train", "validation_split": "test"}
    config_file = workdir / "pg-digits.yaml"
    config_file.write_text(yaml.safe_dump(_config_data(postgres, digits_table, training=training)))
    trained = subprocess.run([str(Path(sys.executable).parent / "h3spark"), "train", str(config_file), "--workdir",
                              str(workdir)], capture_output=True, text=True, timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "h3spark train pg-digits: done" in trained.stdout

    predictions = f"{digits_table}_predicted"
    sink = postgres.config(table=predictions, mode="overwrite")
    config = _config(postgres, digits_table, training=training,
                     predict={"keep": ["id"], "output": {"jdbc": sink}})  # model: training's checkpoints
    result = predict(config, workdir=str(workdir), spark=jdbc_spark)
    assert (result.rows_in, result.rows_out, result.engine) == (1797, 1797, "torch") and result.accuracy > 0.85
    counted = postgres.query(f"SELECT count(*), avg((prediction = label)::int), min(array_length(probabilities, 1)) "
                             f"FROM {predictions}")
    count, accuracy, classes = counted[0].split("|")
    assert (int(count), int(classes)) == (1797, 10) and abs(float(accuracy) - result.accuracy) < 1e-9
    assert postgres.tables_like(f"{predictions}_h3s_%") == []

    stored = dict(row.split("|") for row in postgres.query(f"SELECT id, prediction FROM {predictions} WHERE id < 5"))
    served = _served_labels(workdir / "checkpoints" / "pg-digits", prepared.uri, ids=range(5))
    assert served == [int(stored[str(index)]) for index in range(5)]


def _served_labels(checkpoints: Path, dataset_uri: str, ids) -> list[int]:
    """Start 'h3spark serve' on a free port, send the rows (through the dataset's pipeline), return the labels."""
    from h3spark.ingest import load_bundled
    from h3spark.preprocess import Pipeline
    from h3spark.serve import for_prediction

    import pyarrow as pa

    digits = load_bundled("digits").slice(0, len(ids))
    raw = pa.table({"id": list(ids), "label": digits.column("label"),
                    **{name: np.array(digits.column("features").to_pylist())[:, index] for index, name in enumerate(PIXELS)}})
    features = for_prediction(Pipeline.load(dataset_uri), raw.column_names).transform(raw).table.column("features")
    command = [str(Path(sys.executable).parent / "h3spark"), "serve", str(checkpoints), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = _url(server)
        assert requests.get(f"{url}/v2/health/ready", timeout=30).json() == {"ready": True}
        body = {"inputs": [{"name": "input", "shape": [len(ids), 64], "datatype": "FP32",
                            "data": features.to_pylist()}]}
        response = requests.post(f"{url}/v2/models/pg-digits/infer", json=body, timeout=30)
        assert response.status_code == 200, response.text
        bad = requests.post(f"{url}/v2/models/pg-digits/infer", timeout=30,
                            json={"inputs": [{**body["inputs"][0], "shape": [len(ids), 8, 8]}]})
        assert bad.status_code == 400 and "expects shape [-1, 64]" in bad.json()["error"]
        return next(output["data"] for output in response.json()["outputs"] if output["name"] == "label")
    finally:
        server.terminate()
        server.communicate(timeout=60)


def _url(server: subprocess.Popen) -> str:
    for line in server.stdout:
        if "/v2/models/" in line:
            return line.strip().split("/v2/models/")[0]
    raise AssertionError(f"h3spark serve printed no URL: {server.stderr.read()}")
