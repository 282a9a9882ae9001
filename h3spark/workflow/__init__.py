"""Workflow: run the stages a config describes and collect a summary."""

from h3spark.workflow._context import DEFAULT_WORKDIR, RunContext, choose_workdir, resolve_paths
from h3spark.workflow._run import STAGES, run

__all__ = ["run", "RunContext", "STAGES", "DEFAULT_WORKDIR", "choose_workdir", "resolve_paths"]
