"""Checkpoints: one folder per run, resume from the newest checkpoint of the newest run only with
the same settings, and a run keeps its last K checkpoints plus its best."""

from __future__ import annotations

import math

import pytest

from h3spark.cli import main
from h3spark.errors import UsageError
from h3spark.train import latest_checkpoint
from h3spark.storage import LocalFileSystem
from h3spark.train._checkpoint import (RUN_MARKER, CheckpointWriter, config_hash, load_checkpoint, plan_run, read_meta,
                                       reserve_run)

SETTINGS = {"engine": "mxnet", "lr": 0.05, "params": {"hidden": [32], "classes": 4}, "seed": 3, "epochs": 2,
            "checkpoint_interval": 8, "dataset_uri": "file:///data/blobs"}


def write(root: str, run: int, steps, settings=SETTINGS, keep: int = 100, losses=None) -> CheckpointWriter:
    writer = CheckpointWriter(root, run, settings, keep=keep)
    for index, step in enumerate(steps):
        writer.save(step, {"params.nd": f"{run}:{step}".encode()}, {"final": False}, (losses or {}).get(step, 1.0 / (index + 1)))
    return writer


def steps_of(root: str, run: int) -> list[int]:
    import os

    return sorted(int(name[len("step-"):]) for name in os.listdir(f"{root[len('file://'):]}/run-{run:04d}"))


def test_a_fresh_run_takes_the_next_number_and_never_mixes_with_old_checkpoints(tmp_path):
    root = f"file://{tmp_path}/ckpt"
    assert plan_run(root, SETTINGS, resume=False).run == 1
    write(root, 1, [8, 16, 249])
    fresh = plan_run(root, {**SETTINGS, "lr": 0.5}, resume=False)
    assert (fresh.run, fresh.resume_from, fresh.step) == (2, None, 0)
    write(root, 2, [8], settings={**SETTINGS, "lr": 0.5})
    assert steps_of(root, 1) == [8, 16, 249] and steps_of(root, 2) == [8]


def test_resume_takes_the_newest_run_not_the_highest_step_and_says_so(tmp_path):
    root = f"file://{tmp_path}/ckpt"
    write(root, 1, [8, 16, 249])
    write(root, 2, [8, 16])
    plan = plan_run(root, {**SETTINGS, "epochs": 9, "checkpoint_interval": 4}, resume=True)  # how long: not hashed
    assert (plan.run, plan.step, plan.resume_from) == (2, 16, f"{root}/run-0002/step-00000016")
    assert plan.describe() == "resuming from step 16 of run 2"
    assert latest_checkpoint(root) == plan.resume_from and latest_checkpoint(root, run=1).endswith("run-0001/step-00000249")
    meta, files = load_checkpoint(plan.resume_from, ("params.nd",))
    assert files == {"params.nd": b"2:16"}
    assert (meta["run"], meta["step"], meta["config_hash"]) == (2, 16, config_hash(SETTINGS))


def test_resume_refuses_a_checkpoint_written_with_other_settings_and_names_them(tmp_path):
    root = f"file://{tmp_path}/ckpt"
    write(root, 1, [8])
    changed = {**SETTINGS, "lr": 0.1, "params": {"hidden": [32], "classes": 3}}
    with pytest.raises(UsageError) as caught:
        plan_run(root, changed, resume=True)
    message = str(caught.value)
    assert message.startswith(f"cannot resume from {root}/run-0001/step-00000008 (step 8 of run 1): it was written with other settings")
    assert "lr: 0.05 in the checkpoint, 0.1 now" in message
    assert 'params: {"hidden": [32], "classes": 4} in the checkpoint, {"hidden": [32], "classes": 3} now' in message
    assert "train without --resume to start run 2 beside it" in message


def test_resume_without_any_checkpoint_starts_a_run_from_step_0(tmp_path):
    plan = plan_run(f"file://{tmp_path}/none", SETTINGS, resume=True)
    assert (plan.run, plan.resume_from, plan.describe()) == (1, None, "starting run 1 from step 0")


def test_a_run_keeps_its_last_k_checkpoints_and_its_best(tmp_path):
    root = f"file://{tmp_path}/ckpt"
    losses = {1: 5.0, 2: 1.0, 3: 4.0, 4: math.nan, 5: 2.5, 6: 2.6}
    write(root, 1, [1, 2, 3, 4, 5, 6], keep=2, losses=losses)
    assert steps_of(root, 1) == [2, 5, 6]  # the last 2, and step 2: the lowest loss (NaN never counts)
    write(root, 2, [10, 20, 30], keep=1, losses={10: 3.0, 20: 2.0, 30: 1.0})
    assert steps_of(root, 2) == [30]  # the last is the best
    assert steps_of(root, 1) == [2, 5, 6]  # another run's checkpoints are not touched
    meta = read_meta(f"{root}/run-0002/step-00000030")
    assert meta["loss"] == 1.0 and meta["config"]["lr"] == 0.05


def test_keep_must_be_at_least_one(tmp_path):
    with pytest.raises(UsageError, match=r"The 'keep_checkpoints' parameter must be an int in the range \[1, inf\). Got 0 instead."):
        CheckpointWriter(f"file://{tmp_path}", 1, SETTINGS, keep=0)


def test_h3spark_train_resume_with_changed_settings_exits_2_with_the_way_out(labelled, tmp_path, capsys):
    from h3spark.config import load_config
    from h3spark.train import worker_settings

    uri = labelled({"train": [0, 1, 2, 3] * 4})
    config_path = tmp_path / "train.yaml"
    config_path.write_text(f"name: r\ndataset: {{uri: '{uri}'}}\ntraining: {{engine: mxnet, launcher: local, workers: 1, "
                           "params: {classes: 4}}\n")
    workdir = tmp_path / "work"
    settings = worker_settings(load_config(str(config_path)), workdir, resume=False)
    write(settings["checkpoint_uri"], settings["run"], [8], settings=settings)
    assert main(["train", str(config_path), "--workdir", str(workdir), "--resume", "--set", "training.lr=0.2"]) == 2
    err = capsys.readouterr().err
    assert "(step 8 of run 1): it was written with other settings (lr: 0.1 in the checkpoint, 0.2 now)" in err
    assert "Traceback" not in err
    resumed = worker_settings(load_config(str(config_path), overrides=["training.epochs=3"]), workdir, resume=True)
    assert (resumed["run"], resumed["resume_step"]) == (1, 8)


def test_each_new_run_is_reserved_when_planned_so_two_jobs_never_share_one(tmp_path):
    root = f"file://{tmp_path}/ckpt"
    first, second = plan_run(root, SETTINGS, resume=False), plan_run(root, SETTINGS, resume=False)  # no save between
    assert (first.run, second.run) == (1, 2)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["run-0001", "run-0002"]  # no staging left
    assert (tmp_path / "ckpt" / "run-0001" / RUN_MARKER).is_file()
    write(root, 1, [8])
    assert sorted(p.name for p in (tmp_path / "ckpt" / "run-0001").iterdir()) == ["step-00000008"]  # the marker's job is done


def test_a_job_that_loses_the_race_for_a_run_number_takes_the_next(tmp_path):
    root = f"file://{tmp_path}/ckpt"

    class RacedFileSystem(LocalFileSystem):
        raced = False

        def rename(self, source, target):
            if not self.raced:  # another job reserves the same number between our listing and our rename
                self.raced = True
                assert reserve_run(root, 1) == 1
            super().rename(source, target)

    assert reserve_run(root, 1, RacedFileSystem()) == 2
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["run-0001", "run-0002"]


def test_resume_passes_over_an_empty_reserved_run_and_the_refusal_names_the_real_next_run(tmp_path):
    root = f"file://{tmp_path}/ckpt"
    write(root, 1, [8])
    assert plan_run(root, SETTINGS, resume=False).run == 2  # reserved, then its job failed before any save
    plan = plan_run(root, SETTINGS, resume=True)
    assert (plan.run, plan.step, plan.resume_from) == (1, 8, f"{root}/run-0001/step-00000008")
    with pytest.raises(UsageError, match="train without --resume to start run 3 beside it"):
        plan_run(root, {**SETTINGS, "lr": 0.2}, resume=True)


def test_resume_refuses_checkpoints_of_the_layout_before_runs_and_says_how_to_move_them(tmp_path):
    root = f"file://{tmp_path}/ckpt"
    for step in (8, 16):
        (tmp_path / "ckpt" / f"step-{step:08d}").mkdir(parents=True)
    with pytest.raises(UsageError) as caught:
        plan_run(root, SETTINGS, resume=True)
    message = str(caught.value)
    assert message.startswith(f"cannot resume: {root} holds checkpoints of the old layout (step-00000008, step-00000016:")
    assert f"({root}/step-N -> {root}/run-0001/step-N, with mv or hdfs dfs -mv)" in message
    assert not (tmp_path / "ckpt" / "run-0001").exists()  # nothing reserved for a refused resume
    assert plan_run(root, SETTINGS, resume=False).run == 1  # a new run beside them is fine
