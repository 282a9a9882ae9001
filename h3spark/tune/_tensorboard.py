"""TensorBoard: HParams summaries, logdir syncing to remote storage, and the server.

Each trial's logdir holds its scalars and a session-start HParams summary written before
training begins; the experiment dir's own event file holds the HParams experiment (every
hyperparameter and metric name), so TensorBoard's HParams tab lists all trials, running
ones included. tensorboardX itself is imported in one place, ``h3spark.train._tensorboard``.
"""

from __future__ import annotations

import logging
import os
import time

from h3spark.errors import missing_dependency
from h3spark.storage import filesystem_for, join_uri
from h3spark.train import _tensorboard as tensorboard

logger = logging.getLogger(__name__)

FLUSH_S = 0.2  # a short period makes running trials visible (tensorboardX writes queued events every flush_secs)


def summary_writer(logdir: str):
    """A tensorboardX SummaryWriter for a trial's local logdir."""
    return tensorboard.summary_writer(logdir, flush_s=FLUSH_S)


def preload() -> None:
    """Import tensorboardX now (a slot does, so that each forked trial starts with it loaded)."""
    tensorboard.import_tensorboardx()


def events_bytes(logdir: str) -> int:
    """Bytes in the event files directly in ``logdir``."""
    return sum(entry.stat().st_size for entry in os.scandir(logdir) if "tfevents" in entry.name)


def write_session_start(writer, params: dict, wait: bool = False) -> None:
    """The HParams session start (this trial's hyperparameter values); on disk within FLUSH_S,
    or before returning with ``wait`` (used before copying a logdir to remote storage)."""
    _, start, _ = tensorboard.hparams_summaries(params, {})
    before = events_bytes(writer.logdir)
    writer._get_file_writer().add_summary(start)
    deadline = time.monotonic() + 10 * FLUSH_S
    while wait and events_bytes(writer.logdir) <= before and time.monotonic() < deadline:
        time.sleep(FLUSH_S / 10)


def write_session_end(writer, status: str) -> None:
    writer._get_file_writer().add_summary(tensorboard.session_end_summary(status))
    writer.flush()


def write_experiment_summary(local_dir: str, space_example: dict, metric_names: list[str]) -> None:
    """The HParams experiment (names of hyperparameters and metrics) in ``local_dir``'s event file."""
    writer = summary_writer(local_dir)
    experiment, _, _ = tensorboard.hparams_summaries(space_example, {name: 0.0 for name in metric_names})
    writer._get_file_writer().add_summary(experiment)
    writer.close()


class LogdirSync:
    """Mirror a local logdir to a remote URI (hdfs://) at most every ``interval_s``."""

    def __init__(self, local_dir: str, remote_uri: str, interval_s: float = 10.0):
        self.local_dir, self.remote_uri, self.interval_s = local_dir, remote_uri, interval_s
        self._fs = filesystem_for(remote_uri)
        self._sent: dict[str, tuple[int, float]] = {}
        self._last = 0.0

    def maybe_sync(self) -> None:
        if time.monotonic() - self._last >= self.interval_s:
            self.sync()

    def sync(self) -> None:
        self._last = time.monotonic()
        for root, _, files in os.walk(self.local_dir):
            for name in files:
                path = os.path.join(root, name)
                stat = os.stat(path)
                if self._sent.get(path) == (stat.st_size, stat.st_mtime):
                    continue
                relative = os.path.relpath(path, self.local_dir).replace(os.sep, "/")
                with open(path, "rb") as handle:
                    self._fs.write_bytes(join_uri(self.remote_uri, relative), handle.read())
                self._sent[path] = (stat.st_size, stat.st_mtime)


def local_logdir(experiment_dir: str) -> str:
    """A local directory TensorBoard can read: the dir itself, or a copy of a remote one."""
    import tempfile
    from urllib.parse import urlsplit

    from h3spark.storage import local_path

    if urlsplit(experiment_dir).scheme in ("", "file"):
        path = local_path(experiment_dir)
        if not os.path.isdir(path):
            from h3spark.errors import StorageError

            raise StorageError(f"{experiment_dir}: no such experiment dir. Give the dir an experiment wrote (its trials/ holds the logdirs).")
        return path
    target = tempfile.mkdtemp(prefix="h3spark-tensorboard-")
    _download(filesystem_for(experiment_dir), experiment_dir, target)
    return target


def _download(fs, uri: str, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    for name in fs.listdir(uri):
        source = join_uri(uri, name)
        if fs.isdir(source):
            _download(fs, source, os.path.join(target, name))
        elif "tfevents" in name:
            with open(os.path.join(target, name), "wb") as handle:
                handle.write(fs.read_bytes(source))


def tensorboard_command(logdir: str, host: str = "127.0.0.1", port: int = 6006) -> list[str]:
    import importlib.util
    import sys

    if importlib.util.find_spec("tensorboard") is None:
        raise missing_dependency("tensorboard", "'h3spark tensorboard'", extra="test")
    return [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", host, "--port", str(port)]
