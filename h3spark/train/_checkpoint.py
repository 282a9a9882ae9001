"""Checkpoints on file:// or hdfs://, one folder per run: ``CKPT_URI/run-0002/step-00000100/``.

A training run without ``--resume`` is a new run: it takes the next run number, so it never
mixes with the checkpoints of earlier runs (they stay where they are). The driver reserves
the number before any worker starts: it creates ``run-N`` (holding ``run.json`` until the
first checkpoint) by a rename that never replaces anything, and takes N + 1 when another job
got N first, so two jobs on one ``checkpoint_uri`` never share a run. A job that fails before
its first save leaves a run folder without checkpoints, which ``--resume`` passes over. ``--resume`` continues the newest run
that has a checkpoint, from its highest step, and only when that checkpoint was written with
the same settings: each ``checkpoint.json`` records its run, its step, the config hash and
the settings hashed (everything that shapes the weights; not how long, how often or where to
log), so a refusal names the settings that differ. Checkpoints of the layout before runs
(``CKPT_URI/step-N`` with no ``run-*`` folder) are not resumed silently: ``--resume`` refuses
them and says how to move them into a run.

Each checkpoint is published atomically (``_SUCCESS`` last), so a job killed while writing
leaves no half checkpoint behind. After each save a run keeps its last ``keep`` checkpoints
and its best one (the lowest mean training loss since the checkpoint before it).
Files are framework formats without pickle (MXNet's NDArray files, safetensors or ``.npz``
for torch) plus ``checkpoint.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import socket
import uuid
from dataclasses import dataclass

from h3spark.errors import StorageError, UsageError
from h3spark.storage import filesystem_for, is_published, join_uri, publishing, resolve_published

logger = logging.getLogger(__name__)

_RUN_DIR = re.compile(r"^run-(\d{4,})$")
_STEP_DIR = re.compile(r"^step-(\d{8})$")
META_NAME = "checkpoint.json"
RUN_MARKER = "run.json"  # holds a reserved run folder until its first checkpoint does
DEFAULT_KEEP = 3
_MISSING = object()
# Settings a resume may change: how long and how often to train, where to write, which split
# to validate on, how to launch. Every other setting shapes the weights and goes into the hash.
UNHASHED_SETTINGS = frozenset({
    "epochs", "checkpoint_interval", "keep_checkpoints", "checkpoint_uri", "log_dir", "validation_split",
    "launcher", "gpus", "servers", "prefetch", "holdout_fraction", "resume", "run", "resume_from", "resume_step",
})


def config_identity(settings: dict) -> dict:
    """The settings that decide the weights of a run (the hashed part of a checkpoint's record)."""
    return {key: value for key, value in sorted(settings.items()) if key not in UNHASHED_SETTINGS}


def config_hash(settings: dict) -> str:
    text = json.dumps(config_identity(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_uri(root: str, run: int) -> str:
    return join_uri(root, f"run-{run:04d}")


def checkpoint_uri_for(root: str, run: int, step: int) -> str:
    return join_uri(run_uri(root, run), f"step-{step:08d}")


@dataclass(frozen=True)
class RunPlan:
    """Which run a training job writes, and the checkpoint it starts from (None: step 0)."""

    root: str
    run: int
    resume_from: str | None = None
    step: int = 0

    def describe(self) -> str:
        if self.resume_from:
            return f"resuming from step {self.step} of run {self.run}"
        return f"starting run {self.run} from step 0"


def plan_run(root: str, settings: dict, resume: bool) -> RunPlan:
    """A new run (the next free number, reserved here) or, with ``resume``, the newest checkpoint
    of the newest run that has one; raises UsageError when that checkpoint was written with other
    settings, or when the only checkpoints under ``root`` are of the layout before runs."""
    fs = filesystem_for(root)
    runs = _runs(root)
    latest = _newest_checkpoint(root, runs) if resume else None
    if resume and latest is None:
        _refuse_old_layout(root, fs)
    if latest is None:
        plan = RunPlan(root, reserve_run(root, (runs[-1] if runs else 0) + 1, fs))
        if resume:
            logger.info("no checkpoint under %s to resume; %s", root, plan.describe())
        elif runs:
            logger.info("%s; the checkpoints of runs %s stay under %s", plan.describe(), _numbers(runs), root)
        return plan
    run, step, uri = latest
    meta = read_meta(uri)
    if meta.get("config_hash") != config_hash(settings):
        raise UsageError(_mismatch(uri, run, step, meta, settings, runs[-1] + 1))
    return RunPlan(root, run, uri, step)


def reserve_run(root: str, first: int, fs=None) -> int:
    """Create the folder of run ``first``, or of the next number no other job holds; return its number.

    The folder is filled (``run.json``) under a hidden staging name and renamed into place; a
    rename never replaces an existing target (nor a non-empty folder, on POSIX), so exactly one
    of the jobs racing for a number gets it."""
    fs = fs or filesystem_for(root)
    staging = join_uri(root, f".run-reserving-{uuid.uuid4().hex[:12]}")
    record = {"host": socket.gethostname(), "pid": os.getpid()}
    fs.write_bytes(join_uri(staging, RUN_MARKER), json.dumps(record).encode())
    run = first
    try:
        while True:
            target = run_uri(root, run)
            try:
                fs.rename(staging, target)
                return run
            except StorageError:
                if not fs.exists(target):
                    raise
            logger.info("run %d under %s was taken by another job; trying run %d", run, root, run + 1)
            run += 1
    finally:
        fs.delete(staging)  # gone once renamed; left over when a rename failed otherwise


def _refuse_old_layout(root: str, fs) -> None:
    """Checkpoints written before runs existed (``root/step-N``) are never passed over in silence."""
    if not fs.exists(root):
        return
    steps = [name for name in map(_basename, fs.listdir(root)) if _STEP_DIR.match(name)]
    if steps:
        raise UsageError(
            f"cannot resume: {root} holds checkpoints of the old layout ({', '.join(steps[-3:])}: step folders "
            f"directly under checkpoint_uri, before runs existed) and no run with a checkpoint. Move them into a run "
            f"folder to resume them ({root}/step-N -> {root}/run-0001/step-N, with mv or hdfs dfs -mv), or train "
            "without --resume to start a new run beside them, or point training.checkpoint_uri elsewhere.")


def _mismatch(uri: str, run: int, step: int, meta: dict, settings: dict, next_run: int) -> str:
    saved, now = meta.get("config") or {}, config_identity(settings)
    changed = [f"{key}: {_show(saved, key)} in the checkpoint, {_show(now, key)} now"
               for key in sorted(set(saved) | set(now)) if saved.get(key, _MISSING) != now.get(key, _MISSING)]
    details = "; ".join(changed) if changed else "it records no config hash (written by an older h3spark)"
    return (f"cannot resume from {uri} (step {step} of run {run}): it was written with other settings ({details}). "
            f"Resume with the settings it was written with, or train without --resume to start run {next_run} "
            f"beside it, or point training.checkpoint_uri elsewhere.")


def _show(values: dict, key: str) -> str:
    return json.dumps(values[key], default=str) if key in values else "(unset)"


def _numbers(runs: list[int]) -> str:
    return ", ".join(str(run) for run in runs)


class CheckpointWriter:
    """Saves the checkpoints of one run and prunes them to the last ``keep`` and the best."""

    def __init__(self, root: str, run: int, settings: dict, keep: int = DEFAULT_KEEP):
        if not isinstance(keep, int) or keep < 1:
            raise UsageError(f"The 'keep_checkpoints' parameter must be an int in the range [1, inf). Got {keep!r} instead.")
        self.root, self.run, self.keep = root, run, keep
        self.record = {"run": run, "config_hash": config_hash(settings), "config": config_identity(settings)}
        self.fs = filesystem_for(root)
        self._marker = join_uri(run_uri(root, run), RUN_MARKER)  # deleted after this writer's first save

    @classmethod
    def from_settings(cls, settings: dict) -> "CheckpointWriter":
        """The writer of the run a driver planned (``settings['run']``, see ``plan_run``)."""
        if "run" not in settings:
            raise UsageError("the worker settings have no 'run'; build them with h3spark.train.worker_settings.")
        return cls(settings["checkpoint_uri"], int(settings["run"]), settings,
                   int(settings.get("keep_checkpoints") or DEFAULT_KEEP))

    def save(self, step: int, files: dict[str, bytes], meta: dict, loss: float | None = None) -> str:
        """Publish ``files`` and ``meta`` (JSON) as the checkpoint of ``step``; return its URI."""
        uri = checkpoint_uri_for(self.root, self.run, step)
        loss = None if loss is None or not math.isfinite(loss) else float(loss)
        record = {"step": step, **self.record, "loss": loss, **meta}
        with publishing(uri, overwrite=True, fs=self.fs) as tmp_uri:
            self.fs.makedirs(tmp_uri)
            for name, data in files.items():
                self.fs.write_bytes(join_uri(tmp_uri, name), data)
            self.fs.write_bytes(join_uri(tmp_uri, META_NAME), json.dumps(record, indent=2).encode())
        logger.info("checkpoint saved step=%d run=%d uri=%s", step, self.run, uri)
        if self._marker is not None:  # the checkpoint holds the run folder now: it lists steps only
            self.fs.delete(self._marker)
            self._marker = None
        self.prune()
        return uri

    def prune(self) -> list[int]:
        """Delete the run's checkpoints other than the last ``keep`` and the best; return the steps deleted."""
        steps = _steps(run_uri(self.root, self.run), self.fs)
        kept = set(steps[-self.keep:])
        best = _best_step(self.root, self.run, steps, self.fs)
        if best is not None:
            kept.add(best)
        deleted = [step for step in steps if step not in kept]
        for step in deleted:
            self.fs.delete(checkpoint_uri_for(self.root, self.run, step))
        if deleted:
            logger.debug("deleted checkpoints steps=%s run=%d (keep=%d, best=%s)", deleted, self.run, self.keep, best)
        return deleted


def _best_step(root: str, run: int, steps: list[int], fs) -> int | None:
    losses = {}
    for step in steps:
        loss = read_meta(checkpoint_uri_for(root, run, step), fs).get("loss")
        if isinstance(loss, (int, float)) and math.isfinite(loss):
            losses[step] = loss
    return min(losses, key=lambda step: (losses[step], -step)) if losses else None


def latest_checkpoint(root: str, run: int | None = None) -> str | None:
    """The URI of the newest complete checkpoint of ``run`` (default: the newest run that has one), or None."""
    runs = _runs(root)
    found = _newest_checkpoint(root, [r for r in runs if run is None or r == run])
    return found[2] if found else None


def _newest_checkpoint(root: str, runs: list[int]) -> tuple[int, int, str] | None:
    fs = filesystem_for(root)
    for run in reversed(runs):
        steps = _steps(run_uri(root, run), fs)
        if steps:
            return run, steps[-1], checkpoint_uri_for(root, run, steps[-1])
    return None


def _runs(root: str) -> list[int]:
    fs = filesystem_for(root)
    if not fs.exists(root):
        return []
    return sorted(int(m.group(1)) for name in fs.listdir(root) if (m := _RUN_DIR.match(_basename(name))))


def _steps(folder: str, fs) -> list[int]:
    """The steps of the complete checkpoints in a run folder, ascending."""
    if not fs.exists(folder):
        return []
    steps = sorted(int(m.group(1)) for name in fs.listdir(folder) if (m := _STEP_DIR.match(_basename(name))))
    return [step for step in steps if is_published(join_uri(folder, f"step-{step:08d}"), fs)]


def checkpoint_folder(uri: str, fs=None) -> str:
    """The folder that holds the files of the checkpoint at ``uri`` (published like a dataset)."""
    fs = fs or filesystem_for(uri)
    if not is_published(uri, fs):
        raise StorageError(f"{uri} is not a complete checkpoint (no _SUCCESS marker). Resume from another one.")
    return resolve_published(uri, fs)


def read_meta(uri: str, fs=None) -> dict:
    """The ``checkpoint.json`` of the checkpoint at ``uri``."""
    fs = fs or filesystem_for(uri)
    target = join_uri(checkpoint_folder(uri, fs), META_NAME)
    try:
        return json.loads(fs.read_bytes(target))
    except ValueError as error:
        raise StorageError(f"{target} is not valid JSON ({error}); the checkpoint is damaged. "
                           "Delete it to resume from the one before.") from None


def load_checkpoint(uri: str, names: tuple[str, ...]) -> tuple[dict, dict[str, bytes]]:
    """``(meta, {name: bytes})`` of a published checkpoint; names it lacks are left out."""
    fs = filesystem_for(uri)
    folder = checkpoint_folder(uri, fs)
    meta = read_meta(uri, fs)
    return meta, {name: fs.read_bytes(join_uri(folder, name)) for name in names if fs.exists(join_uri(folder, name))}


def _basename(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]
