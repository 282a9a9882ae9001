"""Every spark-submit job in jobs/ goes through the one shared entry (h3spark.cli.job_main): the same
``--config`` handling, and a usage message with exit 2 when its value is missing."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = sorted(path.stem for path in (ROOT / "jobs").glob("*.py"))


def load_job(name: str):
    spec = importlib.util.spec_from_file_location(f"job_{name}", ROOT / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_jobs_are_the_six_commands():
    assert JOBS == ["actors", "experiment", "predict", "preprocess", "run", "train"]


@pytest.mark.parametrize("name", JOBS)
def test_a_job_is_the_shared_entry_and_nothing_else(name):
    tree = ast.parse((ROOT / "jobs" / f"{name}.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert [(node.module, [alias.name for alias in node.names]) for node in imports] == [("h3spark.cli", ["job_main"])]
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert ast.unparse(main.body[-1]) == f"return job_main({name!r}, argv)"


@pytest.mark.parametrize("name", JOBS)
@pytest.mark.parametrize("argv", [["--config"], ["--config", "--workdir", "/tmp/w"], ["--config="]],
                         ids=["at the end", "before another option", "empty"])
def test_config_without_a_value_exits_2_with_a_usage_message(name, argv, capsys):
    assert load_job(name).main(argv) == 2
    err = capsys.readouterr().err
    assert "h3spark: --config needs a value, e.g. --config conf/NAME.yaml" in err
    assert f"usage: spark-submit [SPARK OPTIONS] jobs/{name}.py --config CONFIG [OPTIONS]" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", JOBS)
@pytest.mark.parametrize("form", [["--config", "{path}"], ["--config={path}"]], ids=["two words", "one word"])
def test_the_config_value_reaches_the_command(name, form, tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert load_job(name).main([word.format(path=missing) for word in form]) == 2
    assert str(missing) in capsys.readouterr().err  # the command loaded (and could not find) that config


@pytest.mark.parametrize("name", JOBS)
def test_a_bad_config_exits_2_with_its_problems_and_no_traceback(name, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntraning: {}\n")
    assert load_job(name).main(["--config", str(bad), "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"h3spark: invalid config {bad} (1 problem)\n  line 2  traning: unknown key. Did you mean 'training'?" in err
    assert "Traceback" not in err
