"""h3spark predict on local Spark: raw Parquet rows through the fitted pipeline and a trained model of each
engine (and an experiment's estimator), published atomically as a dataset."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.config import H3SparkConfig
from h3spark.errors import DataError, DatasetExistsError
from h3spark.storage import local_path, read_manifest, resolve_published


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The digits, preprocessed with a fitted pipeline (as h3spark preprocess publishes them), an MLP trained on
    them (numpy engine, saved by Model.save) and the raw rows with an id and a few bad ones, as Parquet files."""
    from h3spark.ingest import load_bundled
    from h3spark.preprocess import Image, Pipeline
    from h3spark.storage import publishing, write_manifest
    from h3spark.train.engines.model import TrainOptions, build_model
    from h3spark.train.engines.spec import mlp_spec

    root = tmp_path_factory.mktemp("predict")
    raw = load_bundled("digits").replace_schema_metadata(None)
    pipeline = Pipeline([Image(["features"], shape=[8, 8])], label="label").fit(raw)
    features = np.array(pipeline.transform(raw).table.column("features").to_pylist(), dtype=np.float32)
    labels = raw.column("label").to_numpy()
    model = build_model("numpy", mlp_spec([64], [32], 10), seed=0, options=TrainOptions(optimizer="adam", lr=0.01))
    for _ in range(8):
        for start in range(0, len(labels), 64):
            model.train_step(features[start:start + 64], labels[start:start + 64])
    model_path = model.save(str(root / "model.safetensors"))
    with publishing(f"file://{root}/digits") as tmp:  # the dataset the model was trained on: its manifest's pipeline
        write_manifest(tmp, {"rows": len(labels), "features": "features", "label": "label", "splits": {},
                             "columns": {"features": {"dtype": "float32", "shape": [64], "encoding": "binary"}},
                             "pipeline": pipeline.to_dict()})
    rows = raw.append_column("id", pa.array(np.arange(raw.num_rows)))
    (root / "new").mkdir()
    for index, start in enumerate(range(0, rows.num_rows, 600)):
        pq.write_table(rows.slice(start, 600), root / "new" / f"part-{index}.parquet")
    return {"root": root, "model": model_path, "pipeline": f"file://{root}/digits", "input": str(root / "new"),
            "features": features, "labels": labels, "numpy_model": model}


def _config(trained, out: str, **predict) -> H3SparkConfig:
    section = {"model": trained["model"], "pipeline": trained["pipeline"], "keep": ["id"],
               "input": {"format": "parquet", "path": trained["input"]}, "output": {"uri": out}, "partitions": 3, **predict}
    return H3SparkConfig.model_validate({"name": "predict-test", "predict": section})


def _predictions(uri: str) -> pa.Table:
    return pq.read_table(local_path(resolve_published(uri))).sort_by("id")


def test_predictions_are_published_with_the_models_probabilities(spark, trained, workdir):
    from h3spark.serve import predict

    seen = []
    result = predict(_config(trained, "datasets/scored"), workdir=str(workdir), spark=spark,
                     progress=lambda done, total: seen.append((done, total)))
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (1797, 1797, 0)
    assert result.tasks == 3 and result.accuracy > 0.9 and seen[-1][0] == seen[-1][1] >= 3  # the last: all done
    table = _predictions(result.output)
    assert table.column_names == ["id", "label", "prediction", "probability", "probabilities"]
    assert table.column("id").to_pylist() == list(range(1797))
    expected = trained["numpy_model"].predict(trained["features"])
    assert np.allclose(np.array(table.column("probabilities").to_pylist()), expected, atol=1e-6)
    assert table.column("prediction").to_pylist() == expected.argmax(axis=1).tolist()
    manifest = read_manifest(result.output)
    assert manifest["rows"] == 1797 and manifest["model"]["engine"] == "numpy" and manifest["accuracy"] == result.accuracy
    assert manifest["columns"]["probabilities"] == {"dtype": "float", "shape": [10], "encoding": "list"}
    assert manifest["pipeline_from"] == trained["pipeline"]
    assert read_manifest(result.quarantine_uri)["rows"] == 0
    with pytest.raises(DatasetExistsError):
        predict(_config(trained, "datasets/scored"), workdir=str(workdir), spark=spark)


@pytest.mark.parametrize("engine", ["mxnet", "torch"])
def test_the_saved_model_predicts_alike_in_the_other_engines(spark, trained, workdir, engine):
    from h3spark.serve import predict

    result = predict(_config(trained, f"datasets/{engine}", engine=engine), workdir=str(workdir), spark=spark)
    assert result.engine == engine and result.rows_out == 1797
    expected = trained["numpy_model"].predict(trained["features"])
    assert np.allclose(np.array(_predictions(result.output).column("probabilities").to_pylist()), expected, atol=1e-4)


def test_an_experiments_estimator_predicts_on_the_preprocessed_vectors(spark, trained, workdir):
    import joblib
    from sklearn.linear_model import LogisticRegression

    from h3spark.serve import predict

    experiment = workdir / "experiments" / "digits"
    (experiment / "best_model").mkdir(parents=True)
    (experiment / "trials.jsonl").write_text("")
    estimator = LogisticRegression(max_iter=500).fit(trained["features"], trained["labels"])
    joblib.dump(estimator, experiment / "best_model" / "model.joblib")
    result = predict(_config(trained, "datasets/sk", model="experiments/digits"), workdir=str(workdir), spark=spark)
    assert result.engine == "sklearn" and result.rows_out == 1797
    assert _predictions(result.output).column("prediction").to_pylist() == estimator.predict(trained["features"]).tolist()


def test_too_many_bad_rows_publish_nothing(spark, trained, workdir, tmp_path):
    from h3spark.serve import predict

    bad = pa.table({"features": [[1e300] * 64, [1.0] * 64, [1e300] * 64], "label": [0, 1, 2], "id": [0, 1, 2]})
    pq.write_table(bad, tmp_path / "bad.parquet")
    config = _config(trained, "datasets/bad", input={"format": "parquet", "path": str(tmp_path / "bad.parquet")},
                     partitions=None)
    with pytest.raises(DataError, match=r"2 of 3 rows are bad .* predict.max_bad_fraction=0.01.*Nothing was written"):
        predict(config, workdir=str(workdir), spark=spark)
    assert not (workdir / "datasets" / "bad").exists()
    result = predict(_config(trained, "datasets/bad", input=config.predict.input.model_dump(), partitions=None,
                             max_bad_fraction=0.7), workdir=str(workdir), spark=spark)
    assert (result.rows_out, result.rows_quarantined) == (1, 2)
    assert pq.read_table(local_path(resolve_published(result.quarantine_uri))).num_rows == 2


def test_a_model_that_does_not_fit_the_pipeline_fails_before_spark_runs(trained, workdir):
    from h3spark.serve import predict
    from h3spark.train.engines.model import build_model
    from h3spark.train.engines.spec import mlp_spec

    other = build_model("numpy", mlp_spec([10], [4], 3)).save(str(workdir / "other.safetensors"))
    with pytest.raises(DataError, match=r"makes 'features' vectors of 64 values, but the model takes rows of shape \[10\]"):
        predict(_config(trained, "datasets/x", model=other), workdir=str(workdir), spark=object())


def test_the_command_with_flags_shows_progress_and_a_summary(spark, trained, workdir, capsys):
    from h3spark.cli import main

    code = main(["predict", "--model", trained["model"], "--pipeline", trained["pipeline"], "--input",
                 trained["input"], "--output", "datasets/cli", "--keep", "id", "--workdir", str(workdir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "h3spark predict predict: done" in out and "rows predicted    1797" in out and "accuracy" in out
    assert "tasks done" in err
    assert _predictions(f"file://{workdir}/datasets/cli").num_rows == 1797
