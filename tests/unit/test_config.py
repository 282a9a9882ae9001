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
