"""h3spark predict and h3spark serve: their flags, and usage or model errors exiting 2 without a traceback."""

from __future__ import annotations

import socket

import pytest

from h3spark.cli import main
from h3spark.cli._main import build_parser
from h3spark.cli._predict import load_predict_config
from h3spark.cli._serve import model_name


def test_serving_no_model_exits_2_saying_what_to_give(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "h3spark: no model at" in err and "Give a model file" in err and "Traceback" not in err


def test_serving_a_file_that_is_no_model_exits_2(tmp_path, capsys):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["serve", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} is not a model h3spark saved" in err and "Traceback" not in err


def test_a_port_in_use_exits_2_naming_it(model_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", model_path, "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_topics_without_a_broker_and_bad_names_are_usage_errors(model_path, capsys):
    assert main(["serve", model_path, "--requests", "x"]) == 2
    assert "--requests and --replies go with --kafka" in capsys.readouterr().err
    assert main(["serve", model_path, "--name", "a/b"]) == 2
    assert "--name 'a/b': a model's name must start with a letter or digit" in capsys.readouterr().err


@pytest.mark.parametrize("path,name", [("h3spark-work/checkpoints/digits", "digits"),
                                       ("exp/best_model/model.joblib", "exp"), ("runs/x/model.safetensors", "x"),
                                       ("ck/digits/run-2/step-40/model.safetensors", "digits"), ("cnn.safetensors", "cnn"),
                                       ("./my model/", "my-model")])
def test_a_model_is_named_after_its_folder(path, name):
    assert model_name(path) == name


def test_predict_flags_make_a_config_without_a_file():
    args = build_parser().parse_args(["predict", "--model", "checkpoints/d", "--input", "new/part.csv", "--output",
                                      "datasets/scored", "--keep", "id", "--keep", "007", "--pipeline", "datasets/d",
                                      "--overwrite"])
    predict = load_predict_config(args).predict
    assert (predict.model, predict.pipeline, predict.input.format, predict.input.path) == \
        ("checkpoints/d", "datasets/d", "csv", "new/part.csv")
    assert predict.output.uri == "datasets/scored" and predict.output.overwrite and predict.keep == ["id", "007"]


def test_predict_flags_override_the_config_file(tmp_path):
    config = tmp_path / "p.yaml"
    config.write_text("name: p\npredict:\n  model: a\n  input: {format: parquet, path: x}\n"
                      "  output: {jdbc: {url: 'jdbc:postgresql://h:1/d', table: t}}\n")
    args = build_parser().parse_args(["predict", str(config), "--output", "datasets/o", "--no-pipeline",
                                      "--set", "predict.model=b"])
    predict = load_predict_config(args).predict
    assert predict.model == "b" and predict.output.uri == "datasets/o" and predict.output.jdbc is None
    assert predict.use_pipeline is False


def test_predict_without_a_config_or_flags_or_with_an_unknown_format_exits_2(capsys):
    assert main(["predict"]) == 2
    assert "h3spark predict needs a CONFIG, or --model, --input and --output" in capsys.readouterr().err
    assert main(["predict", "--model", "m", "--input", "rows.xlsx", "--output", "o"]) == 2
    assert "cannot tell the format of --input rows.xlsx" in capsys.readouterr().err


def test_predict_with_no_model_there_exits_2_before_spark_starts(tmp_path, capsys):
    assert main(["predict", "--model", "missing", "--input", "rows.csv", "--output", "o", "--workdir", str(tmp_path)]) == 2
    assert f"no model at file://{tmp_path}/missing" in capsys.readouterr().err


def test_a_config_without_a_predict_section_exits_2(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("name: c\n")
    assert main(["predict", str(config), "--workdir", str(tmp_path)]) == 2
    assert "predict: required, but missing" in capsys.readouterr().err
