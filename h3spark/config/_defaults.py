"""Defaults shared by every entry point (CLI, jobs, workflow, the Python API)."""

from __future__ import annotations

#: Where datasets, experiments, checkpoints and logs go when neither ``--workdir`` nor the
#: config's ``workdir:`` names a place.
DEFAULT_WORKDIR = "./h3spark-work"
