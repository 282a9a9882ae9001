"""``h3spark preprocess`` with a ``validate:`` section on real local Spark: a failing run exits 1,
lists every violation, publishes nothing and leaves its report; a warn-only run publishes the
dataset with the report beside its manifest; drift is measured against a reference's data or
against the profile in a published dataset's report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from h3spark.cli._main import main
from h3spark.storage import local_path, read_manifest, resolve_published

ROWS = 600
STEPS = [{"kind": "impute", "columns": ["x"]}, {"kind": "one_hot", "columns": ["city"]},
         {"kind": "assemble", "columns": ["x", "city"]}]
FAILING = {
    "rows": {"min": 10_000},
    "columns": {
        "id": {"type": "integer", "unique": True},
        "x": {"type": "double", "not_null": 0.99, "max": 5, "drift": {"reference": "ref", "max": 0.1}},
        "city": {"type": "string", "allowed": ["oslo", "rome"]},
    },
}
VIOLATIONS = [
    "rows.min: the input has 600 rows; bound: at least 10000",
    "columns.id.unique: 3 values of 'id' appear more than once",
    "columns.x.not_null: 90.00% of column 'x' holds a value (60 of 600 rows missing); bound: at least 0.99",
    "columns.x.max: the largest value of 'x' is 99; 2 of 540 values are above the bound 5",
    "columns.x.drift: the PSI of 'x' against ref (column 'x', scanned) is",
    "columns.city.allowed: 4 of 600 values of 'city' are not allowed (the smallest: 'lima' x 4); allowed: 'oslo', "
    "'rome'",
]


@pytest.fixture
def source(workdir) -> Path:
    """Two Parquet files; x has 10 % nulls and two values of 99; ids 0-2 appear twice; 'lima' is not allowed."""
    rng = np.random.default_rng(1)
    ids = np.concatenate([np.arange(ROWS - 3), [0, 1, 2]])
    x = rng.normal(0, 1, ROWS)
    x[[10, 20]] = 99.0
    city = np.where(np.arange(ROWS) % 150 == 7, "lima", rng.choice(["oslo", "rome"], ROWS))
    table = pa.table({"id": ids, "x": pa.array(x, mask=np.arange(ROWS) % 10 == 3), "city": city,
                      "label": rng.integers(0, 2, ROWS)})
    folder = workdir / "raw"
    folder.mkdir()
    pq.write_table(table.slice(0, 300), folder / "part-0.parquet", row_group_size=100)
    pq.write_table(table.slice(300), folder / "part-1.parquet", row_group_size=100)
    pq.write_table(pa.table({"x": rng.normal(1.5, 1, 500)}), workdir / "ref")  # the reference: x moved by 1.5
    return folder


def _write_config(workdir: Path, source, validate: dict, name: str = "checked", **preprocess) -> str:
    config = {"name": name, "spark": {"master": "local[2]", "conf": {"spark.ui.enabled": False,
                                                                     "spark.sql.shuffle.partitions": 2}},
              "source": source if isinstance(source, dict) else {"format": "parquet", "path": str(source)},
              "dataset": {"uri": f"datasets/{name}", "overwrite": True},
              "preprocess": {"steps": STEPS, "max_bad_fraction": 0.5, "validate": validate, **preprocess}}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _run(config: str, workdir: Path, capsys) -> tuple[int, str, str]:
    code = main(["preprocess", config, "--workdir", str(workdir)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _report(folder: Path) -> dict:
    assert (folder / "_expectations.html").stat().st_size > 1000
    return json.loads((folder / "_expectations.json").read_text())


def _nothing_published(workdir: Path, name: str) -> None:
    datasets = workdir / "datasets"
    assert not (datasets / name).exists() and not (datasets / f"{name}_quarantine").exists()
    assert [path.name for path in datasets.iterdir() if path.name.startswith(".")] == []  # no staging left


def test_failing_expectations_exit_1_list_every_violation_and_publish_nothing(spark, workdir, source, capsys):
    code, _, err = _run(_write_config(workdir, source, FAILING), workdir, capsys)
    assert code == 1, err
    assert "6 of 9 expectations of preprocess.validate are violated, so nothing was published" in err
    for line in VIOLATIONS:
        assert line in err
    assert "Traceback" not in err
    _nothing_published(workdir, "checked")
    report = _report(workdir / "datasets" / "checked_expectations")
    assert (report["passed"], report["published"], report["checked"], report["failed"]) == (False, False, 9, 6)
    failed = {(r["expectation"], json.dumps(r["observed"])) for r in report["results"] if not r["passed"]}
    assert ("columns.x.max", "99.0") in failed and ("columns.id.unique", "3") in failed


def test_warn_only_publishes_with_the_report_beside_the_manifest(spark, workdir, source, capsys):
    code, out, err = _run(_write_config(workdir, source, {**FAILING, "on_failure": "warn"}), workdir, capsys)
    assert code == 0, err
    assert "3 of 9 hold, 6 violated (on_failure: warn); report file://" in out
    version = Path(local_path(resolve_published(str(workdir / "datasets" / "checked"))))
    assert (version / "_manifest.json").exists()
    report = _report(version)
    assert (report["published"], report["failed"], report["rows"]) == (True, 6, ROWS)
    manifest = read_manifest(str(workdir / "datasets" / "checked"))
    assert manifest["expectations"] == {"checked": 9, "failed": 6, "on_failure": "warn", "report": "_expectations.json"}
    assert [step["kind"] for step in manifest["pipeline"]["steps"]] == ["impute", "one_hot", "assemble"]
    assert manifest["rows"] == ROWS  # the checks changed nothing in the data


def test_a_missing_column_is_listed_with_every_other_violation_before_a_step_reads_it(spark, workdir, source, capsys):
    validate = {"columns": {"x": {"max": 5}, "age": {"type": "integer", "min": 0}, "city": {"type": "boolean"},
                            "id": {"type": "integer"}}}
    steps = [{"kind": "impute", "columns": ["age"]}, {"kind": "assemble", "columns": ["age", "x"]}]
    code, _, err = _run(_write_config(workdir, source, validate, steps=steps), workdir, capsys)
    assert code == 1, err
    assert "4 of 5 expectations" in err
    assert "columns.age.type: column 'age' is not in the input (it has id, x, city, label)" in err
    assert "columns.age.min: column 'age' is not in the input" in err
    assert "columns.city.type: column 'city' is string, not boolean" in err
    assert "columns.x.max: the largest value of 'x' is 99; 2 of 540 values are above the bound 5" in err
    _nothing_published(workdir, "checked")


def test_one_pass_over_a_csv_source_fails_in_the_same_stage_and_passes_when_the_data_fits(spark, workdir, capsys):
    lines = ["id,x,city,label"] + [f"{i},{i % 7}.5,{['oslo', 'rome'][i % 2]},{i % 2}" for i in range(200)]
    (workdir / "raw.csv").write_text("\n".join(lines + ["200,1.0,lima,0"]) + "\n")
    csv = {"format": "csv", "path": str(workdir / "raw.csv")}
    strict = {"rows": {"max": 200}, "columns": {"city": {"allowed": ["oslo", "rome"]}, "id": {"unique": True}}}
    config = _write_config(workdir, csv, strict, name="csv", fit_mode="one_pass")
    code, _, err = _run(config, workdir, capsys)
    assert code == 1, err
    assert "2 of 3 expectations" in err and "rows.max: the input has 201 rows; bound: at most 200" in err
    assert "columns.city.allowed: 1 of 201 values of 'city' are not allowed (the smallest: 'lima' x 1)" in err
    _nothing_published(workdir, "csv")
    loose = {"rows": {"max": 201}, "columns": {"id": {"unique": True}}, "profile": ["x", "city"]}
    code, out, err = _run(_write_config(workdir, csv, loose, name="csv", fit_mode="one_pass"), workdir, capsys)
    assert code == 0, err
    assert "2 of 2 hold; report file://" in out
    report = _report(Path(local_path(resolve_published(str(workdir / "datasets" / "csv")))))
    assert report["profiles"]["city"]["values"] == [["oslo", 100], ["rome", 100], ["lima", 1]]
    assert sum(count for _, count in report["profiles"]["x"]["values"]) == 201


def test_drift_against_a_published_dataset_reads_the_profile_in_its_report(spark, workdir, source, capsys):
    code, _, err = _run(_write_config(workdir, source, {"profile": ["x", "city"]}, name="train"), workdir, capsys)
    assert code == 0, err
    (workdir / "ref").unlink()  # the reference is the published dataset's report, not data
    drift = {"columns": {"x": {"drift": {"reference": "datasets/train", "max": 0.01, "metric": "ks"}},
                         "city": {"drift": {"reference": "datasets/train", "max": 0.01}}}}
    code, out, err = _run(_write_config(workdir, source, drift, name="later"), workdir, capsys)
    assert code == 0, err  # the same data: no drift
    report = _report(Path(local_path(resolve_published(str(workdir / "datasets" / "later")))))
    assert [(r["expectation"], r["observed"]) for r in report["results"]] == [("columns.x.drift", 0.0),
                                                                            ("columns.city.drift", 0.0)]
    assert "against datasets/train (column 'x', profile in its report)" in report["results"][0]["message"]


def test_an_unusable_drift_reference_exits_2_before_any_work(spark, workdir, source, capsys):
    missing = {"columns": {"x": {"drift": {"reference": "nowhere", "max": 0.2}}}}
    code, _, err = _run(_write_config(workdir, source, missing), workdir, capsys)
    assert code == 2 and "preprocess.validate.columns.x.drift.reference:" in err and "nowhere does not exist" in err
    wrong_column = {"columns": {"x": {"drift": {"reference": "ref", "column": "y", "max": 0.2}}}}
    code, _, err = _run(_write_config(workdir, source, wrong_column), workdir, capsys)
    assert code == 2 and "ref has no column 'y' (it has x)" in err
    assert "Traceback" not in err
    assert not (workdir / "datasets").exists()
