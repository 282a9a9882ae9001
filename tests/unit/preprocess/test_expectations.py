"""Expectations (preprocess.validate) on small in-memory tables: each check, exact merges across
blocks, drift, the report, fail/warn, and config mistakes (exit 2, no traceback)."""

from __future__ import annotations

import json
import logging
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from h3spark.cli._main import main
from h3spark.config import load_config
from h3spark.config._validate import ValidateConfig
from h3spark.errors import ConfigError, ExpectationError
from h3spark.preprocess import Assemble, Expectations, Impute, Pipeline
from h3spark.preprocess._drift import ks, psi
from h3spark.preprocess._expect_report import render_html
from h3spark.preprocess._profile import kind_with
from h3spark.preprocess._reference import Reference
from h3spark.preprocess._stats import finish, merge_partials, partial_stats

SCHEMA = {"id": "bigint", "x": "double", "city": "string", "label": "bigint"}


def _table(n: int = 200, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    x[5] = 50.0
    return pa.table({"id": np.concatenate([np.arange(n - 2), [0, 7]]), "x": pa.array(x, mask=np.arange(n) % 20 == 3),
                     "city": np.where(np.arange(n) == 9, "lima", np.where(np.arange(n) % 2, "oslo", "rome")),
                     "label": np.arange(n) % 2})


def _checks(columns: dict, references: dict | None = None, **validate) -> Expectations:
    return Expectations(ValidateConfig.model_validate({"columns": columns, **validate}), dict(SCHEMA), references or {})


def _outcomes(checks: Expectations, table: pa.Table) -> dict[str, tuple[bool, str]]:
    pipeline = Pipeline([Impute(["x"]), Assemble(["x"])], label="label")
    checks.attach(pipeline)
    pipeline.fit(table)
    checks.settle(pipeline)
    return {outcome.expectation: (outcome.passed, outcome.message) for outcome in checks.outcomes}


@pytest.mark.parametrize("kind", ["nulls", kind_with("bounds", [-1.0, 1.0]), kind_with("allowed", ["oslo"]), "keys",
                                  "sketch"])
def test_every_kind_merges_exactly_whatever_the_blocks(kind):
    table = _table(300)
    column = "city" if kind.startswith("allowed") else "id" if kind == "keys" else "x"
    whole = finish(partial_stats(table, [(column, kind)]), column, kind)
    blocks = [table.slice(0, 7), table.slice(7, 150), table.slice(157)]
    merged = merge_partials([partial_stats(block, [(column, kind)]) for block in reversed(blocks)])
    assert finish(merged, column, kind) == whole


def test_each_check_names_column_expectation_observed_value_and_bound():
    outcomes = _outcomes(_checks({
        "id": {"type": "integer", "unique": True}, "x": {"not_null": 0.99, "min": -10, "max": 5},
        "city": {"type": "string", "allowed": ["oslo", "rome"]}}, rows={"min": 201, "max": 1000}), _table())
    assert outcomes["rows.min"] == (False, "the input has 200 rows; bound: at least 201")
    assert outcomes["rows.max"][0] and outcomes["columns.id.type"] == (True, "column 'id' is bigint")
    assert outcomes["columns.id.unique"] == (False, "2 values of 'id' appear more than once (2 of 200 rows repeat "
                                                    "one), e.g. 0, 7; bound: 0 repeats")
    assert outcomes["columns.x.not_null"] == (False, "95.00% of column 'x' holds a value (10 of 200 rows missing); "
                                                     "bound: at least 0.99")
    assert outcomes["columns.x.min"][0]
    assert outcomes["columns.x.max"] == (False, "the largest value of 'x' is 50; 1 of 190 values are above the bound 5")
    assert outcomes["columns.city.allowed"] == (False, "1 of 200 values of 'city' are not allowed (the smallest: "
                                                       "'lima' x 1); allowed: 'oslo', 'rome'")


def test_the_expect_step_rides_on_the_first_scan_and_never_reaches_the_saved_pipeline():
    checks, pipeline = _checks({"x": {"max": 5}}, rows={"min": 1}), Pipeline([Impute(["x"]), Assemble(["x"])])
    checks.attach(pipeline)
    assert [step.kind for step in pipeline.steps] == ["expect", "impute", "assemble"]
    assert pipeline.depths()[0] == [0, 1]  # one scan fits the expectations and impute together
    again = Pipeline.from_json(pipeline.to_json())  # what a Spark task rebuilds
    again.fit(_table())
    checks.settle(again)
    assert [step.kind for step in again.steps] == ["impute", "assemble"] and "expect" not in again.to_json()
    assert checks.rows == 200 and len(checks.violations) == 1


def test_a_missing_column_or_a_type_that_cannot_meet_a_check_fails_without_a_scan():
    checks = _checks({"age": {"not_null": 1.0}, "city": {"min": 0, "unique": True}, "x": {"type": "string"},
                      "id": {"type": "number"}}, allow_extra_columns=False)
    assert checks.schema_failed() and checks.requests() == [("city", "keys")]
    outcomes = {o.expectation: o.message for o in checks.evaluate({"rows": 3, "stats": {
        "city|keys": {"rows": 3, "distinct": 3, "duplicate_rows": 0, "repeated_values": 0, "exact": False,
                      "examples": []}}}) if not o.passed}
    assert outcomes == {
        "allow_extra_columns": "the input has columns no expectation names: label (allow_extra_columns: false)",
        "columns.age.not_null": "column 'age' is not in the input (it has id, x, city, label)",
        "columns.city.min": "column 'city' is string; min needs a numeric column",
        "columns.x.type": "column 'x' is double, not string"}


def test_uniqueness_sees_repeats_across_blocks_within_blocks_and_of_strings():
    table = pa.table({"id": [1, 2, 3, 4, 3, 3], "city": ["a", "b", "a", None, "c", "d"]})
    partials = [partial_stats(table.slice(0, 3), [("id", "keys"), ("city", "keys")]),
                partial_stats(table.slice(3), [("id", "keys"), ("city", "keys")])]
    merged = merge_partials(partials)
    assert finish(merged, "id", "keys") == {"rows": 6, "distinct": 4, "duplicate_rows": 2, "repeated_values": 1,
                                            "exact": True, "examples": [3]}
    assert finish(merged, "city", "keys")["duplicate_rows"] == 1 and not finish(merged, "city", "keys")["exact"]


def test_allowed_values_of_another_type_are_all_violations_and_examples_keep_exact_counts():
    table = pa.table({"n": [1, 2, 2, 9, 9, 9]})
    assert finish(partial_stats(table, [("n", kind_with("allowed", ["a"]))]), "n", kind_with("allowed", ["a"]))[
        "bad"] == 6
    kind = kind_with("allowed", [1])
    merged = merge_partials([partial_stats(table.slice(i, 1), [("n", kind)]) for i in range(6)])
    assert finish(merged, "n", kind) == {"checked": 6, "bad": 5, "examples": [[2, 2], [9, 3]]}


def test_drift_psi_and_ks_on_sketches_and_categories():
    rng = np.random.default_rng(3)
    a, b, c = rng.normal(0, 1, 20_000), rng.normal(0, 1, 20_000), rng.normal(0.5, 1, 20_000)
    sketch = {name: finish(partial_stats(pa.table({"v": v}), [("v", "sketch")]), "v", "sketch")
              for name, v in {"a": a, "b": b, "c": c}.items()}
    assert psi("sketch", sketch["a"], sketch["b"], 10)[0] < 0.01 < 0.1 < psi("sketch", sketch["a"], sketch["c"], 10)[0]
    assert abs(ks(sketch["a"], sketch["c"])[0] - _exact_ks(a, c)) < 0.005
    same, shifted = [["x", 50], ["y", 50]], [["x", 90], ["y", 10]]
    assert psi("counts", same, same, 10)[0] == 0.0 and psi("counts", same, shifted, 10)[0] > 0.5
    assert len(psi("sketch", sketch["a"], sketch["c"], 10)[1]["bins"]) == 10


def _exact_ks(a: np.ndarray, b: np.ndarray) -> float:
    points = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(np.sort(a), points, side="right") / len(a)
                               - np.searchsorted(np.sort(b), points, side="right") / len(b))))


def test_drift_outcomes_against_a_reference_and_refusals():
    ref = finish(partial_stats(pa.table({"x": np.random.default_rng(5).normal(3, 1, 500)}), [("x", "sketch")]), "x",
                 "sketch")
    references = {"x": Reference("train", "x", "sketch", ref, "scanned"),
                  "city": Reference("train", "city", "sketch", ref, "scanned")}
    outcomes = _outcomes(_checks({"x": {"drift": {"reference": "train", "max": 0.2}},
                                  "city": {"drift": {"reference": "train", "max": 0.2, "metric": "psi"}}},
                                 references), _table())
    passed, message = outcomes["columns.x.drift"]
    assert not passed and message.startswith("the PSI of 'x' against train (column 'x', scanned) is ")
    assert message.endswith("; bound: at most 0.2")
    assert outcomes["columns.city.drift"] == (False, "PSI of 'city' against train (column 'city', scanned) cannot be "
                                                     "computed: the column holds categories, the reference numbers")


def test_fail_raises_with_every_violation_and_writes_the_report(tmp_path):
    checks = _checks({"x": {"max": 5, "min": -100}, "city": {"allowed": ["oslo"]}}, report_uri=str(tmp_path / "rep"))
    _outcomes(checks, _table())
    with pytest.raises(ExpectationError) as raised:
        checks.enforce("file:///data/out", None)
    assert raised.value.exit_code == 1 and len(raised.value.violations) == 2
    assert str(raised.value).startswith("2 of 3 expectations of preprocess.validate are violated, so nothing was "
                                        "published to file:///data/out.")
    assert "\n  columns.x.max: the largest value of 'x' is 50;" in str(raised.value)
    report = json.loads((tmp_path / "rep" / "_expectations.json").read_text())
    assert (report["failed"], report["published"], report["rows"]) == (2, False, 200)
    assert "FAILED: 2 of 3 expectations violated" in (tmp_path / "rep" / "_expectations.html").read_text()


def test_warn_logs_each_violation_and_raises_nothing(caplog):
    checks = _checks({"x": {"max": 5}}, on_failure="warn")
    _outcomes(checks, _table())
    with caplog.at_level(logging.WARNING, logger="h3spark"):
        checks.enforce("file:///data/out", None)
    assert ["expectation violated (on_failure: warn): columns.x.max: the largest value of 'x' is 50; 1 of 190 values "
            "are above the bound 5 dataset=file:///data/out"] == [record.getMessage() for record in caplog.records]


def test_the_report_is_strict_json_and_its_page_escapes_values():
    table = pa.table({"id": [1, 2], "x": [float("inf"), 1.0], "city": ["<script>", "oslo"], "label": [0, 1]})
    checks = _checks({"x": {"max": 5}, "city": {"allowed": ["oslo"]}}, profile=["city", "x"])
    _outcomes(checks, table)
    report = checks.report("file:///d", published=True)
    assert json.loads(json.dumps(report, allow_nan=False))["results"][0]["observed"] == "inf"
    page = render_html(report)
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert set(report["profiles"]) == {"city", "x"}


def _bad_config(tmp_path, validate: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nsource: {format: bundled, name: digits}\npreprocess:\n  steps:\n"
                    "    - {kind: split}\n  validate:\n" + textwrap.indent(textwrap.dedent(validate), "    "))
    return str(path)


@pytest.mark.parametrize("validate, expected", [
    ("columns:\n  x: {maximum: 3}\n", "line 8  preprocess.validate.columns.x.maximum: unknown expectation. Did you "
                                      "mean 'max'? Known: type, not_null, min, max, allowed, unique, drift."),
    ("columns:\n  x: {min: 3, max: 1}\n", "line 8  preprocess.validate.columns.x: min 3 is above max 1; no value could "
                                          "pass."),
    ("columns:\n  x: {not_null: 1.5}\n", "preprocess.validate.columns.x.not_null: must be less than or equal to 1."),
    ("columns:\n  x: {drift: {reference: r, metric: ks, max: 1}}\n", "a KS statistic lies in [0, 1], so max 1 never "
                                                                     "fails"),
    ("columns:\n  x: {allowed: [a, 1]}\n", "must hold values of one type (strings, numbers or booleans); got number, str"),
    ("columns:\n  x: {type: string, min: 0}\n", "min and max need a numeric column, and type is 'string'"),
    ("rows: {min: 5, max: 2}\n", "min 5 is above max 2; no row count could pass"),
    ("on_failure: fail\n", "states no expectation; add rows:, columns: or profile:, or remove validate:"),
    ("columns:\n  x: {type: integr}\n", "preprocess.validate.columns.x.type: must be 'integer', 'floating'"),
    ("report_uri: ../out\n", "preprocess.validate.report_uri: '../out' climbs out of the workdir"),
    ("columns:\n  x: {drift: {reference: ../train, max: 0.2}}\n", "'../train' climbs out of the workdir"),
])
def test_config_mistakes_are_config_errors_naming_the_key(tmp_path, validate, expected):
    with pytest.raises(ConfigError) as raised:
        load_config(_bad_config(tmp_path, validate))
    assert expected in str(raised.value)


def test_a_config_mistake_exits_2_without_a_traceback(tmp_path, capsys):
    assert main(["preprocess", _bad_config(tmp_path, "columns:\n  x: {unqiue: true}\n")]) == 2
    error = capsys.readouterr().err
    assert "unknown expectation. Did you mean 'unique'?" in error and "Traceback" not in error
