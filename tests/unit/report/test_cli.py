"""``h3spark report DIR``: prints where the files went; a folder it cannot report is exit 2 with the
reason and the fix, and no traceback."""

from __future__ import annotations

import os

import pytest

from h3spark.cli import main


def test_the_command_reports_a_run_and_prints_each_files_path(training_dir, tmp_path, capsys):
    out_dir = str(tmp_path / "plots")
    assert main(["report", training_dir, "--out", out_dir]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"h3spark report: reading {training_dir}\n")
    assert "h3spark report train_run: done" in out and "curves  2 panels, 2 lines" in out
    for name in ("curves.png", "report.html"):
        assert os.path.join(out_dir, name) in out and os.path.getsize(os.path.join(out_dir, name)) > 0


def test_an_experiments_summary_names_its_trials(experiment_dir, tmp_path, capsys):
    assert main(["report", experiment_dir, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "trials  4, metric accuracy (max), hyperparameters lr, hidden" in out
    assert "parallel_coordinates.png" in out


def corrupt_results(tmp_path, experiment_dir) -> str:
    import shutil

    folder = str(tmp_path / "damaged")
    shutil.copytree(experiment_dir, folder)
    with open(os.path.join(folder, "results.json"), "w") as handle:
        handle.write("[{]")
    return folder


@pytest.mark.parametrize("folder, message", [
    (lambda path, _: str(path / "nowhere"), "no such directory. Give a directory a run wrote"),
    (lambda path, _: str(path), "is empty: it holds no run to report"),
    (lambda path, _: (path / "a.csv").write_text("1,2") and str(path), "holds no run h3spark knows"),
    (corrupt_results, "results.json is not JSON"),
])
def test_a_folder_it_cannot_report_exits_2_with_the_reason(tmp_path, capsys, experiment_dir, folder, message):
    target = folder(tmp_path, experiment_dir)
    assert main(["report", target]) == 2
    err = capsys.readouterr().err
    assert err.startswith("h3spark: ") and message in err and "Traceback" not in err


def test_a_file_as_out_is_a_usage_error(training_dir, tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    assert main(["report", training_dir, "--out", str(tmp_path / "taken")]) == 2
    assert "is a file; give a directory for the report" in capsys.readouterr().err


def test_the_command_takes_no_config_options(training_dir, capsys):
    assert main(["report", training_dir, "--set", "a=1"]) == 2
    assert "'h3spark report' takes no --set" in capsys.readouterr().err


def test_without_bokeh_the_pngs_are_written_and_the_page_says_what_to_install(training_dir, tmp_path, capsys,
                                                                                monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bokeh.embed", None)  # import bokeh.embed now raises ImportError
    assert main(["report", training_dir, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "The HTML page of h3spark report needs the 'bokeh' package" in err and "pip install 'h3spark[report]'" in err
    assert (tmp_path / "curves.png").stat().st_size > 0 and not (tmp_path / "report.html").exists()
