"""The network's report history: ``NETWORK_HOME/reports.jsonl``, one line per actor report, so that
``h3spark report NETWORK_HOME`` can draw each actor's curves after the run (network.json keeps only
the last report of each).

    {"at_s": 12.4, "actor": "learner", "state": "running", "step": 340, "loss": 0.41,
     "evaluated": {"rows": 360, "accuracy": 0.93, "loss": 0.22}, ...}

``at_s``: seconds from the network's start to the report's creation. A run starts a new history.
On local storage each line is appended as it comes; on remote storage (hdfs://) the whole file is
written when the network closes.
"""

from __future__ import annotations

import json
import os

from h3spark.storage import filesystem_for, join_uri, local_path

REPORTS_NAME = "reports.jsonl"
_KEPT = ("actor", "state", "step", "handled", "loss", "rows_trained", "rows_predicted", "evaluated", "predicted")


class ReportHistory:
    """Appends the reports of one network run to ``home/reports.jsonl``."""

    def __init__(self, home: str, started_ns: int):
        self.uri = join_uri(home, REPORTS_NAME)
        self.started_ns = started_ns
        self._local = self.uri.startswith("file://")
        self._lines: list[str] = []
        self._started = False

    def append(self, meta: dict, created_ns: int) -> None:
        record = {"at_s": round((created_ns - self.started_ns) / 1e9, 3), **{key: meta.get(key) for key in _KEPT}}
        line = json.dumps(record, separators=(",", ":"), default=str)
        if not self._local:
            self._lines.append(line)
            return
        path = local_path(self.uri)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a" if self._started else "w", encoding="utf-8") as handle:
            handle.write(line + "\n")
        self._started = True

    def close(self) -> None:
        """Write the whole history (remote storage; local lines are on disk already)."""
        if self._local or not self._lines:
            return
        filesystem_for(self.uri).write_bytes(self.uri, "".join(line + "\n" for line in self._lines).encode())
