"""One Arrow batch through the fitted pipeline and the model, as each Spark task of h3spark predict runs it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from h3spark.errors import DataError
from h3spark.preprocess import Impute, Pipeline, Split, StandardScale
from h3spark.preprocess._vectors import Assemble
from h3spark.serve import BatchPredictor, ContractModel, feature_matrix, for_prediction


@pytest.fixture(scope="module")
def tabular():
    """Four numeric columns, an id and a label; an MLP over their 4 scaled values."""
    from h3spark.train.engines.model import build_model
    from h3spark.train.engines.spec import mlp_spec

    rng = np.random.default_rng(0)
    table = pa.table({"id": np.arange(40), **{f"x{i}": rng.normal(size=40) for i in range(4)},
                      "label": rng.integers(0, 3, 40)})
    columns = [f"x{i}" for i in range(4)]
    pipeline = Pipeline([Impute(columns), StandardScale(columns), Split(fractions={"train": 0.5, "test": 0.5}, seed=1),
                         Assemble(columns)], label="label").fit(table)
    return table, Pipeline.from_json(pipeline.to_json()), ContractModel(build_model("numpy", mlp_spec([4], [8], 3), seed=0))


def _predictor(model, pipeline, columns, keep=()):
    return BatchPredictor(model, for_prediction(pipeline, columns, keep), label="label", keep=keep)


def test_predictions_carry_kept_columns_the_label_and_one_probability_per_class(tabular):
    table, pipeline, model = tabular
    block = _predictor(model, pipeline, table.column_names, ["id"]).predict(table)
    assert block.table.column_names == ["id", "label", "prediction", "probability", "probabilities"]
    assert block.rows_in == 40 and block.table.num_rows == 40 and block.quarantine.num_rows == 0  # no split: every row
    assert block.table.column("id").to_pylist() == list(range(40))
    probabilities = np.array(block.table.column("probabilities").to_pylist(), dtype=np.float32)
    assert probabilities.shape == (40, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert block.table.column("prediction").to_pylist() == probabilities.argmax(axis=1).tolist()
    assert np.allclose(block.table.column("probability").to_numpy(), probabilities.max(axis=1))
    assert block.labelled == 40 and block.correct == int((probabilities.argmax(1) == table["label"].to_numpy()).sum())


def test_the_same_features_give_the_same_probabilities_as_the_model(tabular):
    table, pipeline, model = tabular
    block = _predictor(model, pipeline, table.column_names).predict(table)
    features = feature_matrix(for_prediction(pipeline, table.column_names).transform(table).table, "features", 4)
    assert np.allclose(np.array(block.table.column("probabilities").to_pylist()), model.predict(features), atol=1e-6)


def test_rows_without_a_label_are_predicted_and_not_scored(tabular):
    table, pipeline, model = tabular
    unlabelled = table.drop_columns(["label"])
    block = _predictor(model, pipeline, unlabelled.column_names).predict(unlabelled)
    assert block.table.column_names == ["prediction", "probability", "probabilities"]
    assert block.table.num_rows == 40 and block.labelled == 0
    some = table.set_column(5, "label", pa.array([None, 1] * 20, pa.int64()))
    block = _predictor(model, pipeline, some.column_names).predict(some)
    assert block.table.num_rows == 40 and block.labelled == 20  # a missing label is no reason to refuse a row


def test_a_keep_column_the_input_lacks_is_named(tabular):
    table, pipeline, _ = tabular
    with pytest.raises(DataError, match=r"predict.keep names \['order_id'\], which the input does not have"):
        for_prediction(pipeline, table.column_names, keep=["order_id"])


def test_rows_the_pipeline_refuses_go_to_the_quarantine_with_their_reason(tabular):
    table, pipeline, model = tabular
    rows = pa.table({"id": [0, 1, 2], "x0": [1.0, 2.0, 3.0], "x1": [1.0, 1e300, 2.0], "x2": [0.0, 0.0, 0.0],
                     "x3": [0.0, 0.0, 0.0], "label": [0, 1, 2]})
    block = _predictor(model, pipeline, rows.column_names, ["id"]).predict(rows)
    assert block.rows_in == 3 and block.table.column("id").to_pylist() == [0, 2]
    assert block.quarantine.column("reason").to_pylist() == ["infinite value (or one beyond float32) in 'x1'"]


def test_without_a_pipeline_list_and_binary_vectors_are_read(served):
    x = np.random.default_rng(2).random((6, 64), dtype=np.float32)
    as_list = pa.table({"features": pa.array(list(x)), "label": np.arange(6)})
    as_binary = pa.table({"features": pa.array([row.tobytes() for row in x], pa.binary()), "label": np.arange(6)})
    for table in (as_list, as_binary, as_binary.slice(2)):
        block = BatchPredictor(served).predict(table)
        rows = x[6 - table.num_rows:]
        assert np.allclose(np.array(block.table.column("probabilities").to_pylist()), served.predict(rows), atol=1e-6)


def test_vectors_of_the_wrong_size_or_type_are_a_data_error_naming_the_column(served):
    with pytest.raises(DataError, match="holds binary vectors of 12 bytes; the model takes 64 float32 values"):
        feature_matrix(pa.table({"v": pa.array([b"x" * 12], pa.binary())}), "v", 64)
    with pytest.raises(DataError, match="column 'v' is string; the model needs a vector of 64 numbers"):
        feature_matrix(pa.table({"v": ["a"]}), "v", 64)
    with pytest.raises(DataError, match="the input has no column 'features'.*predict.features"):
        BatchPredictor(served).predict(pa.table({"x": [1.0]}))
