"""``h3spark preprocess`` and jobs/preprocess.py: config errors exit 2 before Spark starts."""

import importlib.util
import textwrap
from pathlib import Path

from h3spark.cli._main import main

ROOT = Path(__file__).resolve().parents[3]


def _job():
    spec = importlib.util.spec_from_file_location("preprocess_job", ROOT / "jobs" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bad_config_exits_2_with_lines(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(textwrap.dedent("""
        name: bad
        source: {format: bundled, name: digits}
        preprocess:
          steps:
            - {kind: one_hot, columns: [c], handle_unknown: maybe}
    """))
    assert main(["preprocess", str(config)]) == 2
    error = capsys.readouterr().err
    assert "line 6" in error and "handle_unknown" in error and "'ignore', 'error' or 'quarantine'" in error


def test_job_passes_config_to_the_same_command(tmp_path, capsys):
    config = tmp_path / "nopre.yaml"
    config.write_text("name: nopre\nsource: {format: bundled, name: digits}\n")
    assert _job().main(["--config", str(config), "--workdir", str(tmp_path)]) == 2
    assert "preprocess: required, but missing" in capsys.readouterr().err


def test_pyarrow_reader_on_a_csv_source_exits_2(tmp_path, capsys):
    config = tmp_path / "reader.yaml"
    config.write_text(textwrap.dedent("""
        name: reader
        source: {format: csv, path: raw.csv}
        preprocess:
          reader: pyarrow
          steps:
            - {kind: impute, columns: [x]}
    """))
    assert main(["preprocess", str(config)]) == 2
    error = capsys.readouterr().err
    assert "preprocess.reader 'pyarrow' reads Parquet sources only, and source.format is 'csv'" in error
    assert "Traceback" not in error
