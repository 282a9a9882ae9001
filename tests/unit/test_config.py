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


# --- model specs, training options and layer searches (issue 12) ----------------------------

CNN_SPEC = """    input_shape: [1, 8, 8]
    layers:
      - {type: conv2d, name: conv1, filters: 4, kernel: 3, padding: 1, activation: relu}
      - {type: maxpool, size: 2}
LAYER_AFTER_POOL
      - {type: dense, name: hidden, units: 16, activation: relu}
      - {type: dense, name: logits, units: 10}
"""


def spec_config(tmp_path, engine="mxnet", after_pool="      - {type: flatten}", extra=""):
    spec = CNN_SPEC.replace("LAYER_AFTER_POOL", after_pool)
    return write(tmp_path, f"name: demo\ntraining:\n  engine: {engine}\n  model:\n{spec}{extra}")


def load_checked(path, overrides=()):
    from h3spark.train import validation_context

    return load_config(path, overrides, context=validation_context())


@pytest.mark.parametrize("engine", ["mxnet", "torch"])
def test_a_model_spec_with_a_shape_mistake_exits_2_naming_the_layer_and_both_shapes(tmp_path, capsys, engine):
    path = spec_config(tmp_path, engine, after_pool="      - {type: batchnorm}")  # no flatten before the dense layer
    code, err = validate_cli(path, capsys)
    assert code == 2 and "Traceback" not in err
    assert (f"invalid config {path} (1 problem)\n  line 4  training.model: layer 'hidden' (dense) cannot follow its "
            "input: it needs a flat input (features,), but its input's shape is (4, 4, 4). Add {type: flatten} before it.") in err


def test_a_valid_model_spec_loads_as_a_mapping_and_mlp_stays_the_default(tmp_path):
    config = load_checked(spec_config(tmp_path))
    assert config.training.model["layers"][0]["name"] == "conv1"
    assert load_checked(write(tmp_path, "name: demo\ntraining:\n  engine: torch\n")).training.model == "mlp"


def test_a_spec_option_mistake_names_the_layer(tmp_path):
    path = spec_config(tmp_path, after_pool="      - {type: flatten}\n      - {type: dropout, rate: 1.5}")
    with pytest.raises(ConfigError) as caught:
        load_checked(path)
    assert caught.value.problems == ["line 4  training.model: training.model.layers[3] (dropout0): 'rate' must be a "
                                     "number in [0, 1). Got 1.5 instead."]


@pytest.mark.parametrize("extra, problem", [
    ("  params: {hidden: [32]}\n", "line 12  training.params: a model spec sets its layers itself; params (hidden) go "
                                   "with model: mlp. Remove them, or set the option on the spec's layer."),
    ("  model_x: 1\n", "line 12  training.model_x: unknown key. Did you mean 'model'?"),
])
def test_a_model_spec_takes_no_mlp_params(tmp_path, extra, problem):
    problems, _ = problems_of(spec_config(tmp_path, extra=extra))
    assert problems == [problem]


def test_a_model_spec_needs_a_neural_engine(tmp_path):
    problems, _ = problems_of(spec_config(tmp_path, engine="sklearn"))
    assert problems == ["line 4  training.model: a model spec (a mapping of layers) trains on engine mxnet or torch; "
                        "engine 'sklearn' takes an estimator's name, e.g. logistic_regression. Set training.engine."]


def test_a_model_spec_reaches_the_check_only_through_the_context(tmp_path):
    """config cannot import train: plain load_config reads a spec unchecked, the CLI's loading checks it."""
    path = spec_config(tmp_path, after_pool="      - {type: batchnorm}")
    assert load_config(path).training.model["input_shape"] == [1, 8, 8]
    with pytest.raises(ConfigError, match="layer 'hidden' \\(dense\\) cannot follow"):
        load_checked(path)


TRAINING = "name: demo\ntraining:\n  engine: ENGINE\n  workers: 1\n  kvstore: local\n"


@pytest.mark.parametrize("engine", ["mxnet", "torch"])
def test_training_options_are_read_for_both_neural_engines(tmp_path, engine):
    path = write(tmp_path, TRAINING.replace("ENGINE", engine) +
                 "  optimizer: dcasgd\n  momentum: 0.5\n  weight_decay: 1.0e-4\n  clip_norm: 2.0\n  warmup_steps: 5\n"
                 "  schedule: cosine\n  total_steps: 100\n  min_lr: 0.001\n")
    training = load_config(path).training
    assert (training.optimizer, training.weight_decay, training.clip_norm, training.warmup_steps) == ("dcasgd", 1e-4, 2.0, 5)
    assert (training.schedule, training.total_steps, training.min_lr) == ("cosine", 100, 0.001)


@pytest.mark.parametrize("lines, problem", [
    ("  schedule: cosine\n", "line 2  training.total_steps: the cosine schedule needs total_steps >= 1, the step where "
                             "the rate reaches min_lr. Got 0 instead."),
    ("  schedule: linear\n", "line 6  training.schedule: must be 'constant', 'step' or 'cosine'. Got 'linear' instead."),
    ("  weight_decay: -1\n", "line 6  training.weight_decay: must be greater than or equal to 0. Got -1 instead."),
    ("  clip_norm: -0.5\n", "line 6  training.clip_norm: must be greater than or equal to 0. Got -0.5 instead."),
    ("  warmup_steps: -1\n", "line 6  training.warmup_steps: must be greater than or equal to 0. Got -1 instead."),
    ("  step_size: 0\n", "line 6  training.step_size: must be greater than or equal to 1. Got 0 instead."),
    ("  gamma: 0\n", "line 6  training.gamma: must be greater than 0. Got 0 instead."),
])
def test_bad_training_options_name_their_key(tmp_path, lines, problem):
    problems, _ = problems_of(write(tmp_path, TRAINING.replace("ENGINE", "torch") + lines))
    assert problems == [problem]


@pytest.mark.parametrize("engine, params, problem", [
    ("mxnet", "{clip_gradient: 1.0}", "'clip_gradient' is no optimizer_params key of engine 'mxnet'; set "
                                      "training.clip_norm instead."),
    ("mxnet", "{momentum: 0.9}", "'momentum' is no optimizer_params key of engine 'mxnet'; set training.momentum instead."),
    ("torch", "{wd: 0.1}", "'wd' is no optimizer_params key of engine 'torch'; set training.weight_decay instead."),
    ("torch", "{nesterov: true}", "'nesterov' is no optimizer_params key of engine 'torch'; the torch engine's "
                                  "optimizer_params are betas, eps, weight_decay. Remove it."),
    ("torch", "{betas: [0.9]}", "betas must be a list of two numbers [beta1, beta2]. Got [0.9] instead."),
    ("torch", "{betas: [0.9, 1.0]}", "beta2 must be a number in the range [0, 1). Got 1.0 instead."),
    ("mxnet", "{epsilon: 0}", "epsilon must be a number > 0. Got 0 instead."),
])
def test_optimizer_params_are_honoured_or_refused_with_the_key_to_use(tmp_path, engine, params, problem):
    problems, _ = problems_of(write(tmp_path, TRAINING.replace("ENGINE", engine) + f"  optimizer_params: {params}\n"))
    key = params[1:].split(":")[0]
    assert problems == [f"line 6  training.optimizer_params.{key}: {problem}"]


def test_weight_decay_is_given_once(tmp_path):
    path = write(tmp_path, TRAINING.replace("ENGINE", "mxnet") + "  weight_decay: 0.1\n  optimizer_params: {wd: 0.1}\n")
    problems, _ = problems_of(path)
    assert problems == ["line 7  training.optimizer_params.wd: training.weight_decay is set too; give it once, as "
                        "training.weight_decay, and remove this key."]
    assert load_config(path, ["training.optimizer_params={}"]).training.weight_decay == 0.1


def test_mxnet_keeps_its_other_optimizers_and_torch_takes_the_contracts(tmp_path):
    assert load_config(write(tmp_path, TRAINING.replace("ENGINE", "mxnet") + "  optimizer: nag\n")).training.optimizer == "nag"
    problems, _ = problems_of(write(tmp_path, TRAINING.replace("ENGINE", "torch") + "  optimizer: nag\n"))
    assert problems == ["line 2  training: The 'optimizer' parameter must be one of ['sgd', 'adam', 'dcasgd'] with "
                        "engine 'torch'. Got 'nag' instead."]


EXPERIMENT = """name: demo
experiment:
  model:
    engine: ENGINE
    spec:
      input_shape: [1, 8, 8]
      layers:
        - {type: conv2d, name: conv1, filters: 4, kernel: 3, activation: relu}
        - {type: flatten}
        - {type: dense, name: hidden, units: 16, activation: relu}
        - {type: dropout, rate: 0.1}
        - {type: dense, name: logits, units: 10}
    params: {epochs: 2, weight_decay: 1.0e-4}
  space:
SPACE
"""


def experiment_config(tmp_path, space, engine="torch", model_lines=""):
    text = EXPERIMENT.replace("ENGINE", engine).replace("SPACE", space)
    return write(tmp_path, text.replace("    params:", model_lines + "    params:"))


def test_a_search_ranges_over_layer_options_lr_and_weight_decay(tmp_path):
    space = ("    layers.hidden.units: [8, 32]\n    layers.conv1.kernel: {type: int, low: 1, high: 5}\n"
             "    layers.dropout0.rate: [0.0, 0.5]\n    lr: {type: loguniform, low: 1.0e-3, high: 1.0e-1}\n"
             "    weight_decay: [0.0, 1.0e-3]")
    experiment = load_checked(experiment_config(tmp_path, space)).experiment
    assert experiment.model.spec["layers"][2]["units"] == 16
    assert list(experiment.space) == ["layers.hidden.units", "layers.conv1.kernel", "layers.dropout0.rate", "lr",
                                      "weight_decay"]


@pytest.mark.parametrize("space, problem", [
    ("    layers.conv1.kernel: [3, 9]", "line 2  experiment: space layers.conv1.kernel=9: layer 'conv1' (conv2d) cannot "
                                      "follow its input: it needs an input of at least 9x9 pixels after padding 0 (its "
                                      "9x9 kernel), but its input's shape is (1, 8, 8)."),
    ("    layers.hidden.units: {type: int, low: 0, high: 8}", "line 2  experiment: space layers.hidden.units=0: "
     "experiment.model.spec.layers[2] (hidden): 'units' must be a positive int. Got 0 instead."),
    ("    layers.hiden.units: [8]", "line 2  experiment: space layers.hiden.units=8: 'layers.hiden.units': the model has "
                                    "no layer 'hiden'; its layers are ['conv1', 'flatten0', 'hidden', 'dropout0', 'logits']."),
    ("    layers.hidden.name: [a]", "line 2  experiment: space layers.hidden.name='a': 'layers.hidden.name': a layer's "
                                    "name cannot vary (its weights are named by it); vary its options, e.g. units or rate."),
    ("    hidden: [8, 16]", "line 2  experiment: space key 'hidden': 'hidden' shapes the built-in mlp and cnn; a model spec "
                            "sets its layers itself. Set a layer's option instead, e.g. layers.NAME.units."),
])
def test_a_layer_search_is_checked_at_every_value_it_tries(tmp_path, capsys, space, problem):
    path = experiment_config(tmp_path, space)
    code, err = validate_cli(path, capsys)
    assert code == 2 and "Traceback" not in err
    assert f"invalid config {path} (1 problem)\n  {problem}" in err


@pytest.mark.parametrize("engine, model_lines, space, problem", [
    ("sklearn", "", "    lr: [0.1]", "line 5  experiment.model.spec: a model spec trains on engine mxnet or torch; "
                                      "set experiment.model.engine."),
    ("torch", "    name: mlp\n", "    lr: [0.1]", "line 13  experiment.model.name: give either name (a built-in model) "
                                                  "or spec (your layers), not both."),
])
def test_a_spec_in_an_experiment_needs_a_neural_engine_and_no_name(tmp_path, engine, model_lines, space, problem):
    problems, _ = problems_of(experiment_config(tmp_path, space, engine, model_lines))
    assert problems == [problem]


def test_layer_keys_need_a_spec(tmp_path):
    path = write(tmp_path, "name: demo\nexperiment:\n  model: {engine: torch, name: mlp}\n  space:\n"
                           "    layers.hidden.units: [8, 16]\n")
    problems, _ = problems_of(path)
    assert problems == ["line 2  experiment: space key 'layers.hidden.units' sets an option of a spec's layer; give the "
                        "model as experiment.model.spec to search over its layers."]
    path = write(tmp_path, "name: demo\nexperiment:\n  train_fn: 'my.module:train'\n  space:\n    layers.a.b: [1]\n")
    assert load_checked(path).experiment.space == {"layers.a.b": [1]}  # a train_fn reads its params itself


def test_every_conf_file_with_a_model_spec_passes_the_spec_check():
    from pathlib import Path

    conf = sorted((Path(__file__).resolve().parents[2] / "conf").glob("*.yaml"))
    with_specs = [path for path in conf if "input_shape:" in path.read_text()]
    assert {path.name for path in with_specs} >= {"train_cnn_mxnet.yaml", "train_cnn_torch.yaml", "experiment_cnn.yaml"}
    for path in with_specs:
        assert load_checked(path).name
