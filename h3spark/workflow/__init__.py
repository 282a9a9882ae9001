"""Workflow: run the stages a config describes and collect a summary."""

from h3spark.workflow._best import best_params_problems, with_best_params
from h3spark.workflow._context import DEFAULT_WORKDIR, RunContext, choose_workdir, resolve_paths
from h3spark.workflow._evaluate import evaluation_config, evaluation_wanted
from h3spark.workflow._next import next_steps
from h3spark.workflow._run import STAGES, planned_stages, run

__all__ = ["run", "RunContext", "STAGES", "DEFAULT_WORKDIR", "choose_workdir", "resolve_paths", "planned_stages",
           "next_steps", "best_params_problems", "with_best_params", "evaluation_wanted", "evaluation_config"]
