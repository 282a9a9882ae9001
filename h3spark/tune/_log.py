"""The append-only trial log (``trials.jsonl``) that makes an experiment dir resumable.

One JSON object per line: an ``experiment`` header, then ``started`` and ``finished``
events. A trial whose latest ``finished`` event has a final status (completed, stopped,
failed, timeout) is never run again; a cancelled or interrupted one runs on resume.
A line that is JSON but does not fit its event's schema (h3spark.tune._schema) is skipped
with a warning naming the line, so one bad record never stops a resume.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from urllib.parse import urlsplit

from h3spark.errors import ConfigError, StorageError
from h3spark.storage import filesystem_for, join_uri, local_path
from h3spark.tune._schema import event_problem
from h3spark.tune._search import Trial

logger = logging.getLogger(__name__)

LOG_NAME = "trials.jsonl"
FINAL_STATUSES = ("completed", "stopped", "failed", "timeout")


class TrialLog:
    """Appends events to ``experiment_dir/trials.jsonl`` (a local append, or a rewrite on remote storage)."""

    def __init__(self, experiment_dir: str):
        self.uri = join_uri(experiment_dir, LOG_NAME)
        self._fs = filesystem_for(self.uri)
        self._local = urlsplit(self.uri).scheme in ("", "file")
        self._lock = threading.Lock()
        self.events = self._read()

    def _read(self) -> list[dict]:
        if not self._fs.exists(self.uri):
            return []
        events, lines = [], self._fs.read_bytes(self.uri).decode().splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                if number < len(lines):
                    raise StorageError(f"{self.uri} line {number} is not JSON; the trial log is damaged. "
                                       "Remove that line or start a new experiment dir.") from None
                continue  # a torn last line (a killed driver) is ignored
            problem = event_problem(event)
            if problem:  # e.g. an unchecked message stored by an older h3spark: never worth a crash
                logger.warning("skipped line %d of %s: %s. The trial it belongs to runs again unless a later "
                               "line records it", number, self.uri, problem)
                continue
            events.append(event)
        return events

    def append(self, event: dict) -> None:
        line = json.dumps({"time": time.time(), **event}, separators=(",", ":"), default=str)
        with self._lock:
            self.events.append(json.loads(line))
            if self._local:
                path = local_path(self.uri)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            else:
                body = "".join(json.dumps(item, separators=(",", ":"), default=str) + "\n" for item in self.events)
                self._fs.write_bytes(self.uri, body.encode())

    def check_header(self, header: dict) -> None:
        """Write the header of a new log, or check that a resumed one was made by the same search."""
        existing = next((event for event in self.events if event.get("event") == "experiment"), None)
        if existing is None:
            self.append({"event": "experiment", **header})
            return
        changed = [key for key in ("search", "metric", "direction", "seed") if existing.get(key) != header.get(key)]
        if changed:
            was = ", ".join(f"{key}={existing.get(key)!r}" for key in changed)
            now = ", ".join(f"{key}={header.get(key)!r}" for key in changed)
            raise ConfigError(self.uri, [f"this experiment dir was made with {was}, not {now}. Resume it with the same "
                                         "settings, or give a new experiment dir."])

    def final_records(self) -> dict[int, dict]:
        """The latest finished record of each trial whose status is final."""
        records = {}
        for event in self.events:
            if event.get("event") == "finished":
                records[event["trial_id"]] = event
        return {trial_id: record for trial_id, record in records.items() if record.get("status") in FINAL_STATUSES}

    def check_params(self, trials: list[Trial]) -> None:
        """A resumed search must give the same params to the same trial ids."""
        logged = {event["trial_id"]: event.get("params") for event in self.events if event.get("event") == "started"}
        for trial in trials:
            if trial.trial_id in logged and logged[trial.trial_id] != trial.params:
                raise ConfigError(self.uri, [f"trial {trial.trial_id} ran with params {logged[trial.trial_id]}, but the "
                                             f"search now gives {trial.params}. The search space or seed changed; use "
                                             "a new experiment dir."])
