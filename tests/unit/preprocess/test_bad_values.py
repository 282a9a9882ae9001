"""Malformed rows and values never pass silently: reader marks, bad text, numbers that do not fit,
oversized vocabulary entries, and a bound on the whole fitted state."""

import json

import numpy as np
import pyarrow as pa
import pytest

from h3spark.config import H3SparkConfig
from h3spark.errors import ConfigError, DataError
from h3spark.preprocess import (Assemble, BadRowError, Cast, HashFeatures, MinMaxScale, OneHot, Pipeline, StandardScale,
                                StringIndex, pipeline_from_config)
from h3spark.preprocess._job import check_state_size

FFFD = "\ufffd"


def _text(values: list[bytes | None]) -> pa.Array:
    """A string column holding exactly these bytes (Arrow does not check them, as Parquet and Spark hand them over)."""
    return pa.Array.from_buffers(pa.string(), len(values), pa.array(values, pa.binary()).buffers())


def _reasons(result) -> list[str]:
    return result.quarantine.column("reason").to_pylist()


def test_text_that_is_not_utf8_goes_to_quarantine_with_its_bytes_shown():
    table = pa.table({"city": _text([b"oslo", b"r\xffme", None]), "x": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    pipeline = Pipeline([OneHot(["city"]), Assemble(["x", "city"])]).fit(table)
    result = pipeline.transform(table)
    assert result.table.num_rows == 2 and _reasons(result) == ["invalid UTF-8 in column 'city'"]
    assert json.loads(result.quarantine.column("row")[0].as_py())["city"] == "r\\xffme"
    assert pipeline.steps[0].state_["vocabulary"] == {"city": ["oslo"]}  # the fit never saw the bad row


def test_replacement_characters_from_the_reader_go_to_quarantine():
    table = pa.table({"city": ["oslo", f"r{FFFD}me"], "x": [1.0, 2.0], "label": [0, 1]})
    result = Pipeline([Assemble(["x"])]).fit(table).transform(table)
    assert _reasons(result) == ["invalid UTF-8 in column 'city' (the reader replaced undecodable bytes with U+FFFD)"]
    with pytest.raises(BadRowError, match=r"bad row in step read: invalid UTF-8 in column 'city'.*r\\ufffdme"):
        Pipeline([Assemble(["x"])]).fit(table).transform(table, strict=True)


def test_malformed_records_say_whether_their_text_was_not_utf8():
    table = pa.table({"x": [1.0, None, None], "label": [0, None, None],
                      "_corrupt_record": _text([None, b'{"x": "\xff"}', b"1,2,3,4"])})
    result = Pipeline([Assemble(["x"])]).fit(table).transform(table)
    assert _reasons(result) == ["malformed record (invalid UTF-8)",
                                "malformed record (wrong number of fields, broken JSON or a value of the wrong type)"]
    assert result.table.column_names == ["features", "label"]


@pytest.mark.parametrize("step", [OneHot, StringIndex])
def test_a_value_longer_than_max_category_chars_stays_out_of_the_vocabulary(step):
    huge = "z" * 5000
    table = pa.table({"c": ["a", "b", huge, "a"], "label": [0, 1, 0, 1]})
    pipeline = Pipeline([step(["c"], max_category_chars=100), Assemble(["c"])]).fit(table)
    assert sorted(pipeline.steps[0].state_["vocabulary"]["c"]) == ["a", "b"]
    assert len(pipeline.to_json()) < 2000
    result = pipeline.transform(table)
    assert result.table.num_rows == 3 and _reasons(result) == ["value longer than max_category_chars=100 in column 'c'"]
    default = Pipeline([step(["c"]), Assemble(["c"])]).fit(table)
    assert huge not in default.steps[0].state_["vocabulary"]["c"]  # 1024 characters by default


def test_string_index_keeps_the_most_frequent_categories_only():
    table = pa.table({"c": ["a", "a", "a", "b", "b", "c"], "label": [0] * 6})
    pipeline = Pipeline([StringIndex(["c"], max_categories=2), Assemble(["c"])]).fit(table)
    assert pipeline.steps[0].state_["vocabulary"] == {"c": ["a", "b"]}
    assert pipeline.transform(table).table.column("features").to_pylist()[-1] == [2.0]  # unknown: index 2


def test_a_fitted_pipeline_larger_than_max_state_mib_fails_naming_the_step():
    table = pa.table({"id": [f"row-{i:06d}" for i in range(20_000)], "x": np.ones(20_000), "label": [0] * 20_000})
    pipeline = Pipeline([StandardScale(["x"]), StringIndex(["id"]), Assemble(["x", "id"])]).fit(table)
    check_state_size(pipeline, max_state_mib=1)
    with pytest.raises(DataError, match=r"holds 0\.\d MiB of state, more than preprocess.max_state_mib=0.1; "
                                        r"string_index\(id\) holds 0\.\d MiB of it.*max_categories"):
        check_state_size(pipeline, max_state_mib=0.1)


def test_bounds_are_config_keys():
    base = {"name": "b", "source": {"format": "csv", "path": "x.csv"}}
    steps = [{"kind": "string_index", "columns": ["c"], "max_categories": 10, "max_category_chars": 64},
             {"kind": "assemble", "columns": ["c"]}]
    config = H3SparkConfig.model_validate({**base, "preprocess": {"steps": steps, "max_state_mib": 2}})
    assert config.preprocess.max_state_mib == 2
    assert pipeline_from_config(config.preprocess).steps[0].spec.max_category_chars == 64
    with pytest.raises(ConfigError, match="max_category_chars"):
        Pipeline([OneHot(["c"], max_category_chars=0), Assemble(["c"])]).fit(pa.table({"c": ["a"], "label": [0]}))


@pytest.mark.parametrize("target, value", [("float32", "1e39"), ("int32", "3000000000"), ("int64", "1e20")])
def test_a_number_that_does_not_fit_the_cast_goes_to_quarantine(target, value):
    table = pa.table({"x": ["1", value, "2"], "label": [0, 1, 0]})
    result = Pipeline([Cast({"x": target}), Assemble(["x"])]).fit(table).transform(table)
    assert result.table.column("features").to_pylist() == [[1.0], [2.0]]
    assert _reasons(result) == [f"'{value}' in column 'x' is out of range for {target}"]


def test_an_infinite_value_neither_skews_a_range_nor_reaches_the_features():
    table = pa.table({"x": [0.0, 5.0, 10.0, float("inf")], "y": [1.0, 1e39, 1.0, 1.0], "label": [0, 1, 0, 1]})
    pipeline = Pipeline([MinMaxScale(["x"]), Assemble(["x", "y"])]).fit(table)
    assert pipeline.steps[0].state_["min_max"] == {"x": [0.0, 10.0]}
    result = pipeline.transform(table)
    assert result.table.column("features").to_pylist() == [[0.0, 1.0], [1.0, 1.0]]
    assert _reasons(result) == ["infinite value (or one beyond float32) in 'y'",
                                "infinite value (or one beyond float32) in 'x'"]


def test_list_features_with_infinite_values_go_to_quarantine():
    table = pa.table({"features": [[1.0, 2.0], [float("-inf"), 0.0]], "label": [0, 1]})
    result = Pipeline([Assemble(["features"])]).fit(table).transform(table)
    assert result.table.num_rows == 1
    assert _reasons(result) == ["infinite value (or one beyond float32) inside column 'features'"]


def test_hashed_numbers_treat_nan_as_missing_and_reject_infinity():
    table = pa.table({"x": [2.0, float("nan"), None, float("inf")], "label": [0, 1, 0, 1]})
    result = Pipeline([HashFeatures(["x"], num_features=4, output="features")]).fit(table).transform(table)
    matrix = np.array(result.table.column("features").to_pylist())
    assert np.isfinite(matrix).all() and matrix.sum(axis=1).tolist() == [2.0, 0.0, 0.0]
    assert _reasons(result) == ["infinite value (or one beyond float32) in column 'x'"]
