"""Malformed CSV/JSON rows on real local Spark: quarantined by preprocessing with a reason,
refused by the ingest stage (which has no quarantine); bounded fitted state; truthful manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from h3spark.config import H3SparkConfig
from h3spark.errors import DataError
from h3spark.preprocess import preprocess
from h3spark.storage import local_path, read_manifest, resolve_published

MALFORMED = "malformed record (wrong number of fields, broken JSON or a value of the wrong type)"
STEPS = [{"kind": "one_hot", "columns": ["city"]}, {"kind": "assemble", "columns": ["x", "city"]}]


def _csv(path, rows: list[bytes]) -> str:
    good = [f"{i},{i % 3}.5,{['oslo', 'rome'][i % 2]},{i % 2}".encode() for i in range(40)]
    path.write_bytes(b"\n".join([b"id,x,city,label"] + good + rows) + b"\n")
    return str(path)


def _config(source: dict, preprocess_section: dict | None = None, **extra) -> H3SparkConfig:
    """A preprocessing config (an ingest one when ``preprocess_section`` is None)."""
    if preprocess_section is not None:
        extra["preprocess"] = {"steps": STEPS, "max_bad_fraction": 0.2, "fit_mode": "scans", **preprocess_section}
    dataset = {"uri": "datasets/out", "partitions": 2, "overwrite": True}
    return H3SparkConfig.model_validate({"name": "bad", "source": source, "dataset": dataset, **extra})


def _quarantine(result) -> list[dict]:
    return pq.read_table(local_path(resolve_published(result.quarantine_uri))).to_pylist()


def test_csv_rows_with_extra_or_missing_fields_or_bad_bytes_go_to_quarantine(spark, workdir):
    path = _csv(workdir / "raw.csv", [b"100,1.5,oslo,1,EXTRA", b"101,2.5", b"102,3.5,r\xffme,0"])
    result = preprocess(_config({"format": "csv", "path": path}, {}), workdir=str(workdir), spark=spark)
    assert (result.rows_in, result.rows_out, result.rows_quarantined) == (43, 40, 3)
    quarantined = sorted((row["reason"], json.loads(row["row"])["id"]) for row in _quarantine(result))
    assert quarantined == [("invalid UTF-8 in column 'city' (the reader replaced undecodable bytes with U+FFFD)", 102),
                           (MALFORMED, 100), (MALFORMED, 101)]
    manifest = read_manifest(result.uri)
    assert manifest["pipeline"]["steps"][0]["state"]["vocabulary"] == {"city": ["oslo", "rome"]}
    assert "_corrupt_record" not in manifest["columns"]


def test_json_with_bytes_that_are_not_utf8_goes_to_quarantine(spark, workdir):
    lines = [f'{{"x": {i}.5, "city": "oslo", "label": {i % 2}}}'.encode() for i in range(20)]
    (workdir / "raw.json").write_bytes(b"\n".join(lines + [b'{"x": 1.0, "city": "r\xffme", "label": 0}']) + b"\n")
    config = _config({"format": "json", "path": str(workdir / "raw.json")}, {})
    result = preprocess(config, workdir=str(workdir), spark=spark)
    assert result.rows_quarantined == 1 and [row["reason"] for row in _quarantine(result)] == [
        "malformed record (invalid UTF-8)"]


def test_a_huge_category_is_quarantined_and_the_state_is_bounded(spark, workdir):
    path = _csv(workdir / "raw.csv", [b"100,1.5," + b"z" * 2_000_000 + b",1"])
    result = preprocess(_config({"format": "csv", "path": path}, {}), workdir=str(workdir), spark=spark)
    reasons = [row["reason"] for row in _quarantine(result)]
    assert reasons == ["value longer than max_category_chars=1024 in column 'city'"]
    assert (Path(local_path(resolve_published(result.uri))) / "_manifest.json").stat().st_size < 20_000
    tight = _config({"format": "csv", "path": path}, {"max_state_mib": 0.0001, "steps": [
        {"kind": "string_index", "columns": ["id"]}, {"kind": "assemble", "columns": ["id"]}]})
    with pytest.raises(DataError, match=r"more than preprocess.max_state_mib=0.0001; string_index\(id\) holds"):
        preprocess(tight, workdir=str(workdir), spark=spark)


def test_the_ingest_stage_refuses_malformed_rows_and_claims_only_real_columns(spark, workdir):
    from h3spark.workflow import run

    bad = _csv(workdir / "bad.csv", [b"100,1.5,oslo,1,EXTRA"])
    refused = r"source .*bad.csv has rows that are malformed .*'100,1.5,oslo,1,EXTRA'.*add a preprocess: section"
    with pytest.raises(DataError, match=refused):
        run(_config({"format": "csv", "path": bad}), workdir=workdir, stop_spark=False)
    assert not (workdir / "datasets" / "out").exists()
    good = _csv(workdir / "good.csv", [])
    training = {"engine": "sklearn", "model": "logistic_regression"}
    with pytest.raises(DataError, match=r"names no features column .*its files have \['id', 'x', 'city', 'label'\]"):
        run(_config({"format": "csv", "path": good}, training=training), workdir=workdir, stop_spark=False)
    uri = resolve_published(f"file://{workdir}/datasets/out")
    manifest = read_manifest(uri)
    assert (manifest["features"], manifest["label"]) == (None, "label")
    assert pq.read_schema(local_path(uri) + "/" + manifest["splits"]["all"]["files"][0]["path"]).names == [
        "id", "x", "city", "label"]
