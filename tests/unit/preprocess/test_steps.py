"""Built-in steps on Arrow tables: behaviour and bad input."""

import numpy as np
import pyarrow as pa
import pytest

from h3spark.errors import ConfigError, DataError
from h3spark.preprocess import (Assemble, Bucketize, Cast, HashFeatures, Image, Impute, MinMaxScale, OneHot, Pipeline,
                                StandardScale, StringIndex, TextHash)


def _run(steps, table, **kwargs):
    pipeline = Pipeline(steps, **kwargs).fit(table)
    return pipeline.transform(table), pipeline


def _vectors(table, name="features"):
    column = table.column(name).combine_chunks()
    return column.flatten().to_numpy().reshape(len(column), column.type.list_size)


def test_impute_strategies():
    table = pa.table({"x": [1.0, None, 3.0, 3.0], "s": ["a", None, "b", "b"], "label": [0, 1, 0, 1]})
    for strategy, expected in (("mean", 7 / 3), ("median", 3.0), ("most_frequent", 3.0)):
        result, _ = _run([Impute(["x"], strategy=strategy), Assemble(["x"])], table)
        assert _vectors(result.table)[1, 0] == pytest.approx(expected)
    result, _ = _run([Impute(["x"], strategy="constant", fill_value=-1), Impute(["s"], strategy="most_frequent"),
                      StringIndex(["s"]), Assemble(["x", "s"])], table)
    assert _vectors(result.table)[1].tolist() == [-1.0, 0.0]


def test_scalers():
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "label": [0, 0, 1, 1]})
    result, _ = _run([StandardScale(["x"]), Assemble(["x"])], table)
    scaled = _vectors(result.table)[:, 0]
    assert scaled.mean() == pytest.approx(0, abs=1e-6) and scaled.std() == pytest.approx(1, rel=1e-5)
    result, _ = _run([MinMaxScale(["x"], feature_range=(-1, 1)), Assemble(["x"])], table)
    assert _vectors(result.table)[:, 0].tolist() == pytest.approx([-1, -1 / 3, 1 / 3, 1])


def test_one_hot_unknown_policies():
    train = pa.table({"c": ["b", "a", "b"], "label": [0, 1, 0]})
    new = pa.table({"c": ["a", "z"], "label": [1, 1]})
    pipeline = Pipeline([OneHot(["c"]), Assemble(["c"])]).fit(train)
    assert pipeline.steps[0].state_["vocabulary"] == {"c": ["a", "b"]}
    assert _vectors(pipeline.transform(new).table).tolist() == [[1, 0], [0, 0]]
    quarantining = Pipeline([OneHot(["c"], handle_unknown="quarantine"), Assemble(["c"])]).fit(train)
    result = quarantining.transform(new)
    assert result.table.num_rows == 1 and "unknown category 'z'" in result.quarantine.column("reason")[0].as_py()
    strict = Pipeline([OneHot(["c"], handle_unknown="error"), Assemble(["c"])]).fit(train)
    with pytest.raises(DataError, match="unseen when fitting"):
        strict.transform(new)


def test_string_index_by_frequency_keeps_unknowns_at_the_end():
    table = pa.table({"c": ["x", "y", "y", "z", "z"], "label": [0] * 5})
    result, pipeline = _run([StringIndex(["c"]), Assemble(["c"])], table)
    assert pipeline.steps[0].state_["vocabulary"]["c"] == ["y", "z", "x"]
    assert pipeline.transform(pa.table({"c": ["q"], "label": [0]})).table.num_rows == 1
    assert _vectors(pipeline.transform(pa.table({"c": ["q"], "label": [0]})).table).tolist() == [[3.0]]


def test_bucketize_given_and_fitted_boundaries():
    table = pa.table({"x": [0.0, 5.0, 10.0, None], "label": [0, 0, 0, 0]})
    given, _ = _run([Bucketize(["x"], boundaries=[1.0, 6.0]), Impute(["x"], strategy="constant", fill_value=9),
                     Assemble(["x"])], table)
    assert _vectors(given.table)[:, 0].tolist() == [0, 1, 2, 9]
    fitted, pipeline = _run([Bucketize(["x"], num_buckets=2), Impute(["x"], strategy="constant", fill_value=9),
                             Assemble(["x"])], table)
    assert pipeline.steps[0].state_["boundaries"] == {"x": [5.0]}
    assert _vectors(fitted.table)[:, 0].tolist() == [0, 1, 1, 9]


def test_hashing_is_stable_and_counts_tokens():
    table = pa.table({"city": ["paris", "rome"], "n": [2.0, 3.0], "text": ["A cat, a dog", None], "label": [0, 1]})
    result, _ = _run([HashFeatures(["city", "n"], num_features=32), TextHash(["text"], num_features=16),
                      Assemble(["hashed", "text"])], table)
    matrix = _vectors(result.table)
    assert matrix.shape == (2, 48)
    assert matrix[0, :32].sum() == 3.0 and matrix[1, :32].sum() == 4.0
    assert matrix[0, 32:].sum() == 4.0 and sorted(matrix[0, 32:][matrix[0, 32:] > 0].tolist())[-1] == 2.0
    again, _ = _run([HashFeatures(["city", "n"], num_features=32), TextHash(["text"], num_features=16),
                     Assemble(["hashed", "text"])], table)
    assert np.array_equal(_vectors(again.table), matrix)


def test_image_normalises_and_quarantines_wrong_shapes():
    pixels = pa.array([[0, 8, 16, 4], [16, 16, 16, 16], [1, 2, 3], [0, 0, 0, 99]], pa.list_(pa.int64()))
    table = pa.table({"features": pixels, "label": [0, 1, 2, 3]})
    result, pipeline = _run([Image(["features"], shape=[2, 2], max_value=16.0)], table)
    assert _vectors(result.table).tolist() == [[0, 0.5, 1, 0.25], [1, 1, 1, 1]]
    reasons = result.quarantine.column("reason").to_pylist()
    assert any("wrong shape" in r and "3 values, expected 4" in r for r in reasons)
    assert any("pixel outside [0, 16]" in r for r in reasons)
    fitted, pipeline = _run([Image(["features"], shape=[4])], table)
    assert pipeline.steps[0].state_["max_value"] == {"features": 99.0}


def test_cast_quarantines_unparsable_values_naming_them():
    table = pa.table({"x": ["1.5", "abc", "", "7"], "n": ["1", "2", "2.5", "x"], "label": [0, 1, 0, 1]})
    result, _ = _run([Cast({"x": "float32", "n": "int64"}), Impute(["x"], strategy="constant", fill_value=0),
                      Impute(["n"], strategy="constant", fill_value=0), Assemble(["x", "n"])], table)
    assert _vectors(result.table).tolist() == [[1.5, 1.0]]
    reasons = sorted(result.quarantine.column("reason").to_pylist())
    assert reasons == ["cannot parse '2.5' in column 'n' as int64", "cannot parse 'abc' in column 'x' as float32",
                       "cannot parse 'x' in column 'n' as int64"]


def test_numeric_step_on_strings_says_add_a_cast():
    with pytest.raises(DataError, match="column 's' needs numbers"):
        Pipeline([StandardScale(["s"]), Assemble(["s"])]).fit(pa.table({"s": ["a"], "label": [0]}))


def test_bad_parameters_use_sklearn_sentences():
    with pytest.raises(ConfigError, match="The 'strategy' parameter of Impute must be 'mean', 'median', "
                                          "'most_frequent' or 'constant'. Got 'average' instead."):
        Pipeline([Impute(["x"], strategy="average")]).fit(pa.table({"x": [1.0]}))
    with pytest.raises(ConfigError, match="Impute has no parameter 'stratgy'"):
        Pipeline([Impute(["x"], stratgy="mean")]).fit(pa.table({"x": [1.0]}))
    with pytest.raises(ConfigError, match="boundaries must be strictly increasing"):
        Pipeline([Bucketize(["x"], boundaries=[2.0, 1.0])]).fit(pa.table({"x": [1.0]}))
