"""The CLI: usage and config errors exit 2 with one clear message and no traceback."""

import subprocess
import sys

import pytest

from h3spark.cli import job_main, main
from h3spark.errors import UsageError


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "validate", "services"):
        assert command in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: h3spark" in capsys.readouterr().out


def test_validate_accepts_a_good_config(capsys):
    assert main(["validate", "conf/quickstart.yaml"]) == 0
    assert "conf/quickstart.yaml: valid (name=quickstart" in capsys.readouterr().out


def test_validate_names_a_misspelt_key_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: demo\ntraining:\n  modle: sgd\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"h3spark: invalid config {path} (1 problem)" in err
    assert "line 3  training.modle: unknown key. Did you mean 'model'?" in err


def test_missing_config_file_exits_2(capsys):
    assert main(["validate", "conf/does-not-exist.yaml"]) == 2
    assert "conf/does-not-exist.yaml" in capsys.readouterr().err


def test_bad_override_exits_2(capsys):
    assert main(["validate", "conf/quickstart.yaml", "--set", "training.holdout_fraction=5"]) == 2
    assert "--set  training.holdout_fraction: must be less than 1. Got 5 instead." in capsys.readouterr().err


def test_unknown_command_and_option_are_usage_errors(capsys):
    assert main(["frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
    assert main(["validate"]) == 2
    assert "the following arguments are required: CONFIG" in capsys.readouterr().err


def test_run_with_nothing_to_do_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text("name: empty\n")
    assert main(["run", str(path), "--workdir", str(tmp_path / "w")]) == 2
    assert "nothing to run" in capsys.readouterr().err


def test_job_main_translates_config_option(capsys):
    assert job_main("validate", ["--config", "conf/quickstart.yaml"]) == 0
    assert job_main("validate", ["--config"]) == 2
    assert "--config needs a value" in capsys.readouterr().err


def test_console_script_exits_2_without_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: demo\nspark:\n  mastr: x\n")
    done = subprocess.run([sys.executable, "-m", "h3spark.cli._main", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "spark.mastr: unknown key. Did you mean 'master'?" in done.stderr


@pytest.mark.parametrize("argv", [
    ["launch", "--workdir", "/tmp/w", "-n", "1", "--", "true"],
    ["launch", "-n", "1", "--set", "training.lr=1", "--", "true"],
    ["services", "up", "--workdir", "/tmp/w", "kafka"],
    ["services", "--set", "a=1", "status"],
    ["services", "status", "--set=a=1"],
    ["tensorboard", "--workdir", "/tmp/w", "experiments/x"],
    ["tensorboard", "experiments/x", "--set", "a=1"],
    ["serve", "checkpoints/x", "--workdir", "/tmp/w"],
])
def test_commands_that_load_no_config_refuse_workdir_and_set(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    option = "--workdir" if "--workdir" in argv else "--set"
    assert f"'h3spark {argv[0]}' takes no {option} (it loads no config); only actors, experiment, gates, predict, " \
           "preprocess, run, stream, train, validate, web take --workdir and --set." in err
    assert "Traceback" not in err


def test_launch_passes_everything_after_the_separator_to_the_command():
    from h3spark.cli._main import build_parser

    args = build_parser().parse_args(["launch", "-n", "2", "--", "python", "train.py", "--workdir", "w", "-n", "5"])
    assert args.num_workers == 2 and args.command == ["python", "train.py", "--workdir", "w", "-n", "5"]
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        build_parser().parse_args(["launch", "-n", "1", "--bogus", "--", "true"])


def test_validate_refuses_an_alias_bomb_with_exit_2(tmp_path, capsys):
    levels = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 12)]
    path = tmp_path / "bomb.yaml"
    path.write_text("name: demo\ntraining:\n  params:\n" + "".join(f"    {level}\n" for level in levels))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "aliases expand to more than 50,000 values (an alias bomb?)" in err and "Traceback" not in err
