"""The YAML loader: typed configs, and one clear line per problem."""

import pytest

from h3spark.config import H3SparkConfig, load_config
from h3spark.errors import ConfigError


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path, overrides=()):
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return caught.value.problems, str(caught.value)


def test_valid_config_gives_typed_sections_and_defaults(tmp_path):
    path = write(tmp_path, "name: demo\ntraining:\n  model: sgd\n  seed: 3\n")
    config = load_config(path)
    assert isinstance(config, H3SparkConfig)
    assert config.training.model == "sgd" and config.training.seed == 3
    assert config.spark.master == "local[*]"
    assert config.source is None


def test_misspelt_key_names_line_and_suggests_the_right_key(tmp_path):
    path = write(tmp_path, "name: demo\nspark:\n  app_name: x\n  mastr: local[2]\n")
    problems, message = problems_of(path)
    assert problems == ["line 4  spark.mastr: unknown key. Did you mean 'master'?"]
    assert message.startswith(f"invalid config {path} (1 problem)")


def test_bad_value_reads_like_sklearn_and_problems_are_sorted_by_line(tmp_path):
    path = write(tmp_path, "name: demo\ntraining:\n  epochs: 2\n  batch_size: -1\n  holdout_fraction: 3\n")
    problems, message = problems_of(path)
    assert problems == [
        "line 4  training.batch_size: must be greater than 0. Got -1 instead.",
        "line 5  training.holdout_fraction: must be less than 1. Got 3 instead.",
    ]
    assert "(2 problems)" in message


def test_wrong_type_and_missing_required_field(tmp_path):
    path = write(tmp_path, "spark:\n  conf: [1, 2]\n")
    problems, _ = problems_of(path)
    assert "line 1  name: required, but missing. Add it to the config." in problems
    assert any(p.startswith("line 2  spark.conf: must be a valid dictionary") for p in problems)


def test_cross_field_rule_names_the_section(tmp_path):
    path = write(tmp_path, "name: demo\nsource:\n  format: csv\n")
    problems, _ = problems_of(path)
    assert problems == ["line 2  source: format 'csv' needs 'path'; add source.path to the config."]


def test_broken_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "name: demo\nspark:\n  master: [local\n")
    problems, _ = problems_of(path)
    assert len(problems) == 1 and problems[0].startswith("line ") and "broken YAML" in problems[0]


def test_missing_file_and_non_mapping(tmp_path):
    problems, message = problems_of(tmp_path / "nope.yaml")
    assert "file not found" in problems[0] and "nope.yaml" in message
    problems, _ = problems_of(write(tmp_path, "- a\n- b\n"))
    assert "top level must be a mapping" in problems[0]


def test_overrides_are_parsed_as_yaml_and_validated(tmp_path):
    path = write(tmp_path, "name: demo\ntraining:\n  lr: 0.5\n")
    config = load_config(path, ["training.lr=0.01", "training.params.max_iter=50", "spark.master=local[2]"])
    assert config.training.lr == 0.01 and config.training.params == {"max_iter": 50}
    assert config.spark.master == "local[2]"
    problems, _ = problems_of(path, ["training.lr=-2"])
    assert problems == ["--set  training.lr: must be greater than 0. Got -2 instead."]


def test_malformed_override_and_unknown_override_key(tmp_path):
    path = write(tmp_path, "name: demo\n")
    problems, _ = problems_of(path, ["training.lr"])
    assert "expected KEY=VALUE" in problems[0]
    problems, _ = problems_of(path, ["trainin.lr=1"])
    assert problems == ["--set  trainin: unknown key. Did you mean 'training'?"]


def test_bad_spark_master_and_name(tmp_path):
    path = write(tmp_path, "name: 'bad name!'\nspark:\n  master: 127.0.0.1:7077\n")
    problems, _ = problems_of(path)
    assert problems[0].startswith("line 1  name: must start with a letter or digit")
    assert problems[1].startswith("line 3  spark.master: must be local[N]")


# --- values: read as YAML, the same way in files and in --set ------------------------------

def test_exponent_floats_are_floats_in_files_and_overrides(tmp_path):
    path = write(tmp_path, "name: demo\ntraining:\n  lr: 1e-12\n  momentum: 5E-1\n")
    config = load_config(path)
    assert config.training.lr == 1e-12 and config.training.momentum == 0.5
    config = load_config(path, ["training.lr=1e-3", "training.params.tol=1.5e3", "training.params.name=e5"])
    assert config.training.lr == 1e-3 and config.training.params == {"tol": 1500.0, "name": "e5"}


@pytest.mark.parametrize("override, value", [("training.lr=.inf", "inf"), ("training.lr=1e309", "inf"),
                                             ("training.holdout_fraction=.nan", "nan"),
                                             ("training.optimizer_params.wd=-.inf", "-inf"),
                                             ("spark.conf.spark.x=.inf", "inf")])
def test_non_finite_numbers_are_refused_once_per_key(tmp_path, override, value):
    problems, _ = problems_of(write(tmp_path, "name: demo\ntraining: {}\n"), [override])
    key = override.split("=")[0]
    assert problems == [f"--set  {key}: must be a finite number. Got {value} instead."]


def test_non_finite_numbers_in_a_file_name_their_line(tmp_path):
    problems, _ = problems_of(write(tmp_path, "name: demo\ntraining:\n  lr: .inf\n  params: {C: .nan}\n"))
    assert problems == ["line 3  training.lr: must be a finite number. Got inf instead.",
                        "line 4  training.params.C: must be a finite number. Got nan instead."]


def test_true_and_false_are_not_numbers(tmp_path):
    problems, _ = problems_of(write(tmp_path, "name: demo\ntraining:\n  batch_size: true\n"), ["dataset.partitions=false"])
    assert problems == ["line 3  training.batch_size: must be a number; true and false are not numbers. Got true instead.",
                        "--set  dataset.partitions: must be a number; true and false are not numbers. Got false instead."]


def test_a_spark_conf_key_with_dots_is_one_key(tmp_path):
    path = write(tmp_path, "name: demo\nsource: {format: kafka, topic: t}\n")
    config = load_config(path, ["spark.conf.spark.sql.shuffle.partitions=4",
                                "source.options.kafka.bootstrap.servers=127.0.0.1:9092"])
    assert config.spark.conf == {"spark.sql.shuffle.partitions": 4}
    assert config.source.options == {"kafka.bootstrap.servers": "127.0.0.1:9092"}


def test_an_override_that_is_not_yaml_says_how_to_quote_it(tmp_path):
    problems, _ = problems_of(write(tmp_path, "name: demo\n"), ["training.model=@sgd", "training..lr=1"])
    assert problems[0].startswith("--set  training.model: broken YAML: found character '@'")
    assert problems[0].endswith("Quote a string value: --set \"training.model='@sgd'\".")
    assert "expected KEY=VALUE with a dotted KEY" in problems[1]


@pytest.mark.parametrize("engine", ["mxnet", "torch"])
@pytest.mark.parametrize("params, message", [
    ("{hidden: [0]}", "The 'hidden' parameter must be a non-empty list of positive layer widths, e.g. [128]. Got [0] instead."),
    ("{hidden: 128}", "The 'hidden' parameter must be a non-empty list of positive layer widths, e.g. [128]. Got 128 instead."),
    ("{hidden: []}", "The 'hidden' parameter must be a non-empty list of positive layer widths, e.g. [128]. Got [] instead."),
    ("{classes: 1}", "The 'classes' parameter must be an int of at least 2, the number of labels. Got 1 instead."),
    ("{dropout: 0.5}", "'dropout' is no parameter of the ENGINE mlp, which reads only classes and hidden. Remove it."),
])
def test_the_distributed_mlp_params_are_checked_at_validation(tmp_path, engine, params, message):
    path = write(tmp_path, f"name: demo\ntraining:\n  engine: {engine}\n  workers: 1\n  kvstore: local\n"
                           f"  params: {params}\n")
    problems, _ = problems_of(path)
    assert problems == [f"line 6  training.params: {message.replace('ENGINE', engine)}"]
    assert load_config(path, [f"training.params={{hidden: [64, 32], classes: 3}}"]).training.params["hidden"] == [64, 32]


# --- files: bounded in size, nesting and alias expansion --------------------------------

def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    levels = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]  # 9**10 values
    path = write(tmp_path, "name: demo\ntraining:\n  params:\n" + "".join(f"    {level}\n" for level in levels))
    problems, _ = problems_of(path)
    assert problems == ["aliases expand to more than 50,000 values (an alias bomb?). "
                        "Write the values out, or use fewer aliases."]


def test_a_recursive_alias_is_refused(tmp_path):
    problems, _ = problems_of(write(tmp_path, "name: demo\ntraining:\n  params:\n    p: &r [1, *r]\n"))
    assert problems == ["line 4  an alias refers to a node that contains it, so the value never ends. Remove that alias."]


@pytest.mark.parametrize("nested", ["[" * 3000 + "]" * 3000, "{a: " * 3000 + "1" + "}" * 3000])
def test_deep_nesting_is_a_config_error_not_a_recursion_error(tmp_path, nested):
    problems, _ = problems_of(write(tmp_path, f"name: demo\ntraining:\n  params:\n    p: {nested}\n"))
    assert problems == ["line 4  nesting deeper than 64 levels; a config needs far fewer. Flatten it."]


def test_deep_block_nesting_is_refused_too(tmp_path):
    text = "name: demo\n" + "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v: 1\n"
    problems, _ = problems_of(write(tmp_path, text))
    assert problems == ["line 65  nesting deeper than 64 levels; a config needs far fewer. Flatten it."]


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as out:
        out.truncate(50 << 20)  # 50 MB, sparse
    problems, _ = problems_of(path)
    assert problems == ["the file holds 52,428,800 bytes, more than the 1,048,576 (1 MiB) a config may hold. "
                        "Keep data out of the config: point source.path at it."]


def test_too_many_values_are_refused_and_overrides_obey_the_same_bounds(tmp_path, monkeypatch):
    from h3spark.config import _yaml

    monkeypatch.setattr(_yaml, "MAX_NODES", 500)  # the real bound, 50,000, takes seconds to reach
    path = write(tmp_path, "name: demo\ntraining:\n  params:\n    p: [" + ", ".join(["1"] * 600) + "]\n")
    problems, _ = problems_of(path)
    assert problems == ["more than 500 values; a config needs far fewer. Keep data out of the config: "
                        "point source.path at it."]
    problems, _ = problems_of(write(tmp_path, "name: demo\n"), ["training.params.p=" + "[" * 100 + "]" * 100])
    assert problems == ["--set  training.params.p: nesting deeper than 64 levels; a config needs far fewer. Flatten it."]


def validate_cli(path, capsys, *overrides):
    """``h3spark validate`` on ``path``: its exit code and its stderr."""
    from h3spark.cli import main

    code = main(["validate", str(path), *[arg for override in overrides for arg in ("--set", override)]])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("line, problem", [
    ("  lr: 2020-13-01", "line 3  '2020-13-01' reads as a date but is not a valid one (month must be in 1..12). "
                         "Quote it to keep it a string."),
    ("  params: {when: 2020-02-30 10:00:00}", "line 3  '2020-02-30 10:00:00' reads as a date but is not a valid one"),
    ("  params: {x: !!float abc}", "line 3  'abc' is not a valid number, which its !!float tag asks for "
                                   "(could not convert string to float: 'abc'). Correct it or drop the tag."),
    ("  params: {x: !!bool maybe}", "line 3  'maybe' is not a valid boolean, which its !!bool tag asks for."),
    ("  params: {x: !!timestamp soon}", "line 3  'soon' is not a valid date, which its !!timestamp tag asks for."),
    ("  params: {x: 0x_}", "line 3  '0x_' reads as an integer but is not a valid one"),
])
def test_a_value_yaml_cannot_construct_is_a_config_error_naming_its_line(tmp_path, capsys, line, problem):
    path = write(tmp_path, f"name: demo\ntraining:\n{line}\n")
    code, err = validate_cli(path, capsys)
    assert code == 2 and problem in err and "Traceback" not in err


def test_a_value_yaml_cannot_construct_in_an_override_says_how_to_quote_it(tmp_path, capsys):
    path = write(tmp_path, "name: demo\n")
    code, err = validate_cli(path, capsys, "training.lr=2020-13-01")
    assert code == 2 and "Traceback" not in err
    assert ("--set  training.lr: '2020-13-01' reads as a date but is not a valid one (month must be in 1..12). "
            "Quote a string value: --set \"training.lr='2020-13-01'\".") in err


@pytest.mark.parametrize("text", ["._e3", "-._1e3"])
def test_a_dot_without_a_digit_is_not_a_float_but_a_string(tmp_path, capsys, text):
    path = write(tmp_path, f"name: demo\ntraining:\n  params: {{x: {text}}}\n")
    assert load_config(path).training.params == {"x": text}
    assert validate_cli(write(tmp_path, f"name: demo\ntraining:\n  lr: {text}\n"), capsys)[0] == 2


def test_a_config_that_is_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: demo\ntraining:\n  params: {city: Zürich}\n".encode("latin-1"))
    code, err = validate_cli(path, capsys)
    assert code == 2 and "Traceback" not in err
    assert f"invalid config {path} (1 problem)\n  line 3  byte 0xfc is not UTF-8 text. Save the file as UTF-8." in err
