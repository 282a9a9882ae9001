"""Preprocessing on real local Spark: publish, bad rows, partition invariance, refit equality."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.config import H3SparkConfig, load_config
from h3spark.errors import ConfigError, DataError
from h3spark.preprocess import BadRowError, Pipeline, pipeline_from_config, preprocess
from h3spark.preprocess._writer import decode_binary
from h3spark.storage import is_published, local_path, read_manifest, resolve_published, resolve_uri

ROWS = 600
STEPS = [
    {"kind": "cast", "columns": {"x": "float64", "amount": "float64"}},
    {"kind": "impute", "columns": ["x", "amount"], "strategy": "mean"},
    {"kind": "impute", "columns": ["city"], "strategy": "most_frequent"},
    {"kind": "standard_scale", "columns": ["x", "amount"]},
    {"kind": "one_hot", "columns": ["city"]},
    {"kind": "split", "fractions": {"train": 0.8, "test": 0.2}, "seed": 5, "key": ["id"]},
    {"kind": "assemble", "columns": ["x", "amount", "city"]},
]


def _write_csv(path, bad_rows=True) -> None:
    rng = np.random.default_rng(0)
    lines = ["id,x,amount,city,label"]
    for i in range(ROWS):
        x = "" if i % 10 == 0 else f"{rng.normal(5, 2):.6f}"
        city = "" if i % 15 == 0 else ["paris", "rome", "oslo"][i % 3]
        amount = "lots" if bad_rows and i == 7 else f"{rng.uniform(0, 100):.3f}"
        label = "" if bad_rows and i == 11 else str(i % 2)
        lines.append(f"{i},{x},{amount},{city},{label}")
    path.write_text("\n".join(lines) + "\n")


# fit_mode -> dataset.partitions: one_pass needs no more partitions than local[2]'s two slots
MODES = {"scans": 3, "one_pass": 2}


def _config(workdir, fit_mode="scans", partitions=None, uri="datasets/out", **preprocess) -> H3SparkConfig:
    csv = workdir / "raw.csv"
    if not csv.exists():
        _write_csv(csv)
    return H3SparkConfig.model_validate({
        "name": "pre", "source": {"format": "csv", "path": str(csv), "options": {"inferSchema": "false"}},
        "dataset": {"uri": uri, "partitions": partitions or MODES.get(fit_mode, 2)},
        "preprocess": {"steps": STEPS, "keep": ["id"], "max_bad_fraction": 0.01, "fit_mode": fit_mode, **preprocess}})


def _read_split(uri: str, split: str) -> pa.Table:
    return pq.read_table(local_path(resolve_published(uri)) + f"/split={split}")


@pytest.mark.parametrize("fit_mode", sorted(MODES))
def test_publishes_dataset_manifest_and_quarantine(spark, workdir, fit_mode):
    result = preprocess(_config(workdir, fit_mode), workdir=str(workdir), spark=spark)
    assert (result.rows_in, result.rows_quarantined) == (ROWS, 2)
    assert result.rows_in == result.rows_out + result.rows_quarantined
    manifest = read_manifest(result.uri)
    assert manifest["rows"] == ROWS - 2 and set(manifest["splits"]) == {"train", "test"}
    assert sum(split["rows"] for split in manifest["splits"].values()) == ROWS - 2
    assert manifest["columns"]["features"] == {"dtype": "float32", "shape": [5], "encoding": "binary"}
    assert all(item["row_groups"] >= 1 for split in manifest["splits"].values() for item in split["files"])
    assert max(item["row_groups"] for item in manifest["splits"]["train"]["files"]) >= 2
    assert manifest["pipeline"]["steps"][4]["state"]["vocabulary"] == {"city": ["oslo", "paris", "rome"]}
    train = _read_split(result.uri, "train")
    assert train.schema.field("features").type == pa.binary(20) and "split" not in train.column_names
    quarantine = pq.read_table(local_path(resolve_published(result.quarantine_uri))).to_pylist()
    assert is_published(result.quarantine_uri)
    reasons = sorted(row["reason"] for row in quarantine)
    assert reasons == ["cannot parse 'lots' in column 'amount' as float64", "missing label 'label'"]
    assert '"id": "7"' in next(row["row"] for row in quarantine if "lots" in row["reason"])


@pytest.mark.parametrize("fit_mode", sorted(MODES))
def test_saved_pipeline_reloaded_on_the_driver_transforms_like_the_tasks(spark, workdir, fit_mode):
    config = _config(workdir, fit_mode)
    result = preprocess(config, workdir=str(workdir), spark=spark)
    reloaded = Pipeline.load(result.uri)
    source = spark.read.options(header="true", inferSchema="false").csv(str(workdir / "raw.csv")).toArrow()
    driver = reloaded.transform(source.slice(100, 200))
    stored = pa.concat_tables([_read_split(result.uri, name) for name in ("train", "test")])
    by_id = {row_id: index for index, row_id in enumerate(stored.column("id").to_pylist())}
    width = 5
    stored_matrix = decode_binary(stored.column("features").combine_chunks(), width)
    driver_matrix = driver.table.column("features").combine_chunks().flatten().to_numpy().reshape(-1, width)
    rows = [by_id[row_id] for row_id in driver.table.column("id").to_pylist()]
    assert len(rows) == 200 and np.array_equal(stored_matrix[rows], driver_matrix)


def test_fitted_state_does_not_depend_on_partition_count(spark, workdir):
    _config(workdir)
    frame = spark.read.options(header="true", inferSchema="false").csv(str(workdir / "raw.csv"))
    section = _config(workdir).preprocess
    fitted = [pipeline_from_config(section).fit(frame.repartition(n)).to_json() for n in (1, 4)]
    on_driver = pipeline_from_config(section).fit(frame.toArrow()).to_json()
    assert fitted[0] == fitted[1] == on_driver


def test_one_pass_fits_the_same_state_for_any_partition_count(spark, workdir):
    fitted = []
    for partitions in (1, 2):
        config = _config(workdir, "one_pass", partitions, uri=f"datasets/out{partitions}")
        result = preprocess(config, workdir=str(workdir), spark=spark)
        assert read_manifest(result.uri)["pipeline"] == result.pipeline.to_dict()
        fitted.append(result.pipeline.to_json())
    source = spark.read.options(header="true", inferSchema="false").csv(str(workdir / "raw.csv")).toArrow()
    assert fitted[0] == fitted[1] == pipeline_from_config(config.preprocess).fit(source).to_json()


def test_one_pass_with_more_partitions_than_slots_is_a_config_error(spark, workdir):
    with pytest.raises(ConfigError, match=r"dataset.partitions is 3 and the cluster has 2 task slots"):
        preprocess(_config(workdir, "one_pass", 3), workdir=str(workdir), spark=spark)


def test_auto_picks_one_pass_for_a_small_input_only(spark, workdir):
    from h3spark.preprocess._spark import size_bytes, task_slots, use_one_pass

    section, slots = _config(workdir, "auto").preprocess, task_slots(spark)
    small = size_bytes(spark.read.options(header="true", inferSchema="false").csv(str(workdir / "raw.csv")))
    assert use_one_pass(section, small, slots, None) and use_one_pass(section, small, slots, 2)
    assert not use_one_pass(section, small, slots, 3)  # more partitions than local[2] has slots
    large = size_bytes(spark.range(300_000))  # Spark estimates 8 bytes a row: 2.3 MiB
    assert use_one_pass(section, large, slots, None)
    assert not use_one_pass(section.model_copy(update={"one_pass_max_mib": 2}), large, slots, None)
    assert not use_one_pass(section, None, slots, None)  # no estimate: the scans


@pytest.mark.parametrize("fit_mode", sorted(MODES))
def test_too_many_bad_rows_fail_and_publish_nothing(spark, workdir, fit_mode):
    config = _config(workdir, fit_mode, max_bad_fraction=0.001)
    with pytest.raises(DataError, match=r"2 of 600 rows are bad .* more than preprocess.max_bad_fraction=0.001"):
        preprocess(config, workdir=str(workdir), spark=spark)
    assert not (workdir / "datasets" / "out").exists() and not (workdir / "datasets" / "out_quarantine").exists()


@pytest.mark.parametrize("fit_mode", sorted(MODES))
def test_strict_mode_names_the_first_bad_row(spark, workdir, fit_mode):
    config = _config(workdir, fit_mode, strict=True)
    with pytest.raises(BadRowError, match=r"bad row in step cast\(amount, x\): cannot parse 'lots'.*\"id\": \"7\""):
        preprocess(config, workdir=str(workdir), spark=spark)
    assert not (workdir / "datasets" / "out").exists()


def test_example_config_runs_through_the_workflow(spark, workdir):
    from h3spark.workflow import run

    config = load_config("conf/preprocess_example.yaml")
    ctx = run(config, workdir=workdir, stop_spark=False)
    uri = resolve_uri(config.dataset.uri, workdir)
    assert ctx.outputs["dataset_uri"] == uri
    manifest = read_manifest(uri)
    assert manifest["rows"] == 1797 and manifest["rows_quarantined"] == 0
    assert manifest["columns"]["features"]["shape"] == [64]
    assert manifest["pipeline"]["steps"][0]["state"]["max_value"] == {"features": 16.0}
    assert manifest["expectations"] == {"checked": 6, "failed": 0, "on_failure": "fail", "report": "_expectations.json"}
    train = _read_split(uri, "train")
    pixels = decode_binary(train.column("features").combine_chunks(), 64)
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    assert 0.75 < manifest["splits"]["train"]["rows"] / 1797 < 0.85
    metrics = ctx.outputs["metrics"]  # the training stage fits on train, scores on validation (the one split rule)
    assert metrics["evaluated_on"] == "validation" and metrics["accuracy"] > 0.85
    assert metrics["train_rows"] == manifest["splits"]["train"]["rows"]
    assert metrics["test_rows"] == manifest["splits"]["validation"]["rows"]
