"""Paths in a config: resolved once against the workdir, shown in the summary, never climbing out of it."""

from __future__ import annotations

import pytest

from h3spark.cli import main
from h3spark.config import H3SparkConfig, escapes_workdir, load_config
from h3spark.errors import ConfigError
from h3spark.workflow import RunContext, resolve_paths


@pytest.mark.parametrize("path, escapes", [
    ("../x", True), ("..", True), ("a/../../x", True), ("file:../x", True), ("./../x", True),
    ("a/../b", False), ("datasets/x", False), ("/tmp/../x", False), ("~/../x", False),
    ("file:///tmp/../x", False), ("hdfs://nn:8020/../x", False), ("..x/y", False),
])
def test_which_paths_climb_out_of_the_workdir(path, escapes):
    assert escapes_workdir(path) is escapes


def test_validation_refuses_a_climbing_path_with_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\ndataset:\n  uri: ../../etc/x\nexperiment:\n  search: single\n  dir: out/../../runs\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [p.split(":", 1)[0] for p in caught.value.problems] == ["line 3  dataset.uri", "line 6  experiment.dir"]
    assert "'../../etc/x' climbs out of the workdir with '..'. Use a path inside the workdir, or an absolute path " \
           "or URI (/..., file:///..., hdfs://...) to use a place outside it on purpose." in caught.value.problems[0]


@pytest.mark.parametrize("conf, overrides", [
    ("train_torch_example", ["training.checkpoint_uri=../ckpt"]), ("train_torch_example", ["training.log_dir=../tb"]),
    ("preprocess_example", ["preprocess.quarantine_uri=../q"]), ("experiment_example", ["experiment.dataset=../d"]),
    ("preprocess_example", ["source.format=csv", "source.path=../raw.csv"])])
def test_every_workdir_path_obeys_the_rule(conf, overrides, capsys):
    assert main(["validate", f"conf/{conf}.yaml", *[arg for o in overrides for arg in ("--set", o)]]) == 2
    key, value = overrides[-1].split("=")
    assert capsys.readouterr().err.endswith(f"  --set  {key}: '{value}' climbs out of the workdir with '..'. Use a path "
                                            "inside the workdir, or an absolute path or URI (/..., file:///..., "
                                            "hdfs://...) to use a place outside it on purpose.\n")


def test_absolute_paths_may_point_anywhere(tmp_path):
    config = load_config("conf/quickstart.yaml", [f"dataset.uri={tmp_path}/../elsewhere", "training.log_dir=/tmp/tb"])
    resolved, rows = resolve_paths(config, tmp_path / "w")
    assert resolved.dataset.uri == f"file://{tmp_path.parent}/elsewhere"
    assert ("training.log_dir", "/tmp/tb") in rows


def test_run_context_resolves_paths_once_and_reports_them(tmp_path):
    config = load_config("conf/quickstart.yaml", ["training.log_dir=tb", "training.checkpoint_uri=hdfs://nn:8020/c/../ck"])
    ctx = RunContext.create(config, tmp_path / "w")
    workdir = tmp_path / "w"
    assert ctx.config.dataset.uri == f"file://{workdir}/datasets/digits"
    assert ctx.config.training.log_dir == f"{workdir}/tb"
    assert ctx.config.training.checkpoint_uri == "hdfs://nn:8020/ck"
    assert config.dataset.uri == "datasets/digits"  # the caller's config is left as it was
    assert ctx.summary[:2] == [("workdir", str(workdir)), ("dataset.uri", f"file://{workdir}/datasets/digits")]


def test_a_config_changed_after_validation_is_still_checked(tmp_path):
    config = H3SparkConfig(name="demo")
    config.dataset.uri = "../out"
    with pytest.raises(ConfigError, match=r"dataset.uri: '../out' climbs out of the workdir"):
        RunContext.create(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_validate_says_where_paths_resolve(tmp_path, capsys):
    assert main(["validate", "conf/quickstart.yaml", "--workdir", str(tmp_path / "w"), "--set", "training.log_dir=tb"]) == 0
    out = capsys.readouterr().out
    assert f"dataset.uri       file://{tmp_path}/w/datasets/digits" in out
    assert f"training.log_dir  {tmp_path}/w/tb" in out
    assert not (tmp_path / "w").exists()  # validate creates nothing
