"""Pipeline: fit depths, JSON round trip, bad rows, strict mode, split, user workers, config."""

import json
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from h3spark.config import load_config
from h3spark.errors import ConfigError, DataError
from h3spark.preprocess import (Assemble, BadRowError, Impute, OneHot, Pipeline, PythonFunction, Split, StandardScale,
                                pipeline_from_config)
from h3spark.preprocess._writer import decode_binary, encode_binary, for_parquet, write_splits


def _table(rows=400, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(3, 2, rows)
    x[::10] = np.nan
    return pa.table({"x": pa.array(x, from_pandas=True), "y": rng.normal(size=rows),
                     "c": rng.choice(["red", "green", "blue"], rows), "label": pa.array(rng.integers(0, 2, rows))})


def _pipeline():
    return Pipeline([Impute(["x"]), StandardScale(["x", "y"]), OneHot(["c"]), Split(seed=3), Assemble(["x", "y", "c"])])


def test_steps_at_the_same_depth_are_fitted_together():
    assert _pipeline().depths() == [[0], [1, 2, 3], [4]]  # the last depth is stateless: no scan
    scans, pipeline = [], _pipeline()

    def record(prefix, requests):
        scans.append((prefix, requests))
        return [pipeline.partial(_table(), prefix, requests)]

    pipeline._fit_with(record)
    assert [prefix for prefix, _ in scans] == [0, 1]
    assert scans[1][1] == [("c", "counts"), ("x", "moments"), ("y", "moments")]
    assert Pipeline([Impute(["x"]), OneHot(["c"]), StandardScale(["x"])]).depths() == [[0, 1], [2]]


def test_saved_pipeline_transforms_identically_after_reload():
    table = _table()
    fitted = _pipeline().fit(table)
    reloaded = Pipeline.from_json(fitted.to_json())
    assert reloaded.to_json() == fitted.to_json()
    first, again = fitted.transform(table.slice(0, 150)), reloaded.transform(table.slice(0, 150))
    assert first.table.equals(again.table)
    json.loads(fitted.to_json())  # plain JSON, no pickle


def test_fit_does_not_depend_on_how_the_data_is_blocked():
    table = _table()
    whole = _pipeline().fit(table).to_json()
    blocked = _pipeline()
    blocked._fit_with(lambda prefix, requests: [blocked.partial(table.slice(i, 37), prefix, requests)
                                                for i in range(0, table.num_rows, 37)])
    assert blocked.to_json() == whole


def test_split_is_seeded_and_independent_of_blocks():
    table = _table(2000)
    pipeline = _pipeline().fit(table)
    whole = pipeline.transform(table).table.column("split").to_pylist()
    pieces = sum((pipeline.transform(table.slice(i, 333)).table.column("split").to_pylist()
                  for i in range(0, 2000, 333)), [])
    assert whole == pieces
    counts = {name: whole.count(name) for name in ("train", "validation", "test")}
    assert 1500 < counts["train"] < 1700 and 120 < counts["test"] < 280
    other = Pipeline([Split(seed=4), Impute(["x"]), Assemble(["x"])]).fit(table).transform(table)
    assert other.table.column("split").to_pylist() != whole


def test_bad_rows_are_quarantined_and_counted():
    table = pa.table({"x": [1.0, None, 3.0], "label": [0, 1, None]})
    result = Pipeline([Assemble(["x"])]).fit(table).transform(table)
    assert result.rows_in == result.table.num_rows + result.quarantine.num_rows == 3
    reasons = result.quarantine.column("reason").to_pylist()
    assert reasons == ["missing value in 'x' (add an impute step)", "missing label 'label'"]
    assert json.loads(result.quarantine.column("row")[0].as_py()) == {"x": None, "label": 1}


def test_strict_mode_fails_at_the_first_bad_row_naming_it():
    table = pa.table({"x": [1.0, None], "label": [0, 1]})
    with pytest.raises(BadRowError, match=r"missing value in 'x'.*Row: \{\"label\": 1, \"x\": null\}"):
        Pipeline([Assemble(["x"])]).fit(table).transform(table, strict=True)


def test_malformed_records_from_the_reader_go_to_quarantine():
    table = pa.table({"x": [1.0, None], "label": [0, None], "_corrupt_record": [None, "{oops"]})
    result = Pipeline([Assemble(["x"])]).fit(table).transform(table)
    assert result.table.num_rows == 1
    assert result.quarantine.column("reason").to_pylist() == [
        "malformed record (wrong number of fields, broken JSON or a value of the wrong type)"]


def test_python_worker_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_workers.py").write_text(textwrap.dedent("""
        import pyarrow as pa, pyarrow.compute as pc
        def double(table, factor):
            reason = pc.if_else(pc.less(table["x"], 0), "negative x", pa.scalar(None, pa.string()))
            return table.set_column(0, "x", pc.multiply(table["x"], factor)).append_column("_reject_reason", reason)
        def drops(table):
            return table.slice(1)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    table = pa.table({"x": [1.0, -2.0, 3.0], "label": [0, 1, 0]})
    result = Pipeline([PythonFunction(function="my_workers:double", params={"factor": 10}, columns=["x"],
                                      outputs=["x"]), Assemble(["x"])]).fit(table).transform(table)
    assert result.table.column("features").combine_chunks().flatten().to_pylist() == [10.0, 30.0]
    assert result.quarantine.column("reason").to_pylist() == ["negative x"]
    with pytest.raises(DataError, match="returned 2 rows for 3"):
        Pipeline([PythonFunction(function="my_workers:drops"), Assemble(["x"])]).fit(table).transform(table)
    with pytest.raises(ConfigError, match="no function 'missing'"):
        Pipeline([PythonFunction(function="my_workers:missing"), Assemble(["x"])]).fit(table).transform(table)


def test_unfitted_and_unknown_output_are_clear_errors():
    table = pa.table({"x": [1.0], "label": [0]})
    with pytest.raises(DataError, match="not fitted"):
        Pipeline([StandardScale(["x"])]).transform(table)
    with pytest.raises(DataError, match="lacks 'features'.*Add an assemble step"):
        Pipeline([StandardScale(["x"])]).fit(table).transform(table)
    with pytest.raises(ConfigError, match="not an h3spark pipeline"):
        Pipeline.from_json('{"steps": []}')


def test_binary_encoding_round_trips_and_splits_are_written(tmp_path):
    table = _table()
    result = _pipeline().fit(table).transform(table)
    stored = for_parquet(result.table, "features")
    width = result.table.column("features").type.list_size
    assert stored.column("features").type == pa.binary(4 * width)
    matrix = decode_binary(stored.column("features").combine_chunks(), width)
    expected = result.table.column("features").combine_chunks().flatten().to_numpy().reshape(-1, width)
    assert np.array_equal(matrix, expected)
    files = write_splits(stored, f"file://{tmp_path}", "split", "part-00000.parquet", 4, {})
    assert sorted(f["path"] for f in files) == ["split=test/part-00000.parquet", "split=train/part-00000.parquet",
                                                "split=validation/part-00000.parquet"]
    assert sum(f["rows"] for f in files) == result.table.num_rows
    assert next(f for f in files if f["path"].startswith("split=train"))["row_groups"] >= 2


def test_config_section_builds_the_pipeline_and_reports_lines(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(textwrap.dedent("""
        name: t
        source: {format: bundled, name: digits}
        preprocess:
          steps:
            - {kind: image, columns: [features], shape: [8, 8], max_value: 16}
            - {kind: split, fractions: {train: 0.8, test: 0.2}, seed: 1}
    """))
    pipeline = pipeline_from_config(load_config(good).preprocess)
    assert [step.kind for step in pipeline.steps] == ["image", "split"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        name: t
        preprocess:
          max_bad_fraction: 2
          steps:
            - {kind: impute, columns: [a], strategy: constant}
            - {kind: split, fractions: {train: 0.5, test: 0.2}}
            - {kind: scale, columns: [a]}
    """))
    with pytest.raises(ConfigError) as error:
        load_config(bad)
    text = str(error.value)
    assert "line 4" in text and "max_bad_fraction" in text
    assert "needs fill_value" in text and "must add up to 1" in text and "'scale'" in text



def test_fit_blocks_with_gathered_partials_matches_one_fit_on_the_whole_table():
    import threading

    from h3spark.preprocess import Assemble, Impute, OneHot, StandardScale

    rng = np.random.default_rng(3)
    x = rng.normal(size=1000) * 1e3
    x[::7] = np.nan
    table = pa.table({"x": pa.array(x, from_pandas=True), "c": rng.choice(["b", "a", "c"], 1000),
                      "label": rng.integers(0, 2, 1000)})
    tasks = [[table.slice(0, 10), table.slice(10, 400)], [table.slice(410, 590)], []]  # a task may hold nothing
    barrier, slots, fitted = threading.Barrier(len(tasks)), [None] * len(tasks), [None] * len(tasks)

    def run(rank):  # one thread per task; gather behaves like BarrierTaskContext.allGather
        def gather(partial):
            slots[rank] = partial
            barrier.wait()
            everyone = list(slots)
            barrier.wait()
            return everyone

        steps = [Impute(["x"]), StandardScale(["x"]), OneHot(["c"]), Assemble(["x", "c"])]
        fitted[rank] = Pipeline(steps).fit_blocks(tasks[rank], gather=gather).to_json()

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    whole = Pipeline([Impute(["x"]), StandardScale(["x"]), OneHot(["c"]), Assemble(["x", "c"])]).fit(table)
    assert fitted[0] == fitted[1] == fitted[2] == whole.to_json()
    assert whole.rows_fitted_ == 1000
