"""What to run after ``h3spark run``: the commands that show what the run wrote (the summary's last lines)."""

from __future__ import annotations

import shlex
from pathlib import Path

from h3spark.workflow._context import RunContext


def next_steps(ctx: RunContext, config_path: str) -> list[tuple[str, str]]:
    """``(label, command)`` rows for the outputs the run has: TensorBoard over the experiment's trials and the
    training run's logs, the actors' web page, and ``h3spark report`` for each of them.

    >>> next_steps(ctx, "conf/quickstart.yaml")[0]
    ('next: tensorboard', 'h3spark tensorboard file:///tmp/qs/experiments/quickstart')
    """
    logs = [where for where in (_experiment_dir(ctx), _training_log_dir(ctx)) if where is not None]
    rows = [("next: tensorboard", f"h3spark tensorboard {shlex.quote(where)}") for where in logs]
    if ctx.outputs.get("actors_home") is not None:
        rows.append(("next: web page", f"h3spark web {shlex.quote(config_path)} --workdir "
                                       f"{shlex.quote(str(ctx.workdir))}  (the actors live; prints the page's URL)"))
    shown = [*logs, ctx.outputs.get("actors_home")]
    return rows + [("next: report", f"h3spark report {shlex.quote(where)}") for where in shown if where is not None]


def _experiment_dir(ctx: RunContext) -> str | None:
    experiment = ctx.outputs.get("experiment")
    return None if experiment is None else experiment.experiment_dir


def _training_log_dir(ctx: RunContext) -> str | None:
    """The neural training run's TensorBoard folder (training.log_dir, default logs/NAME under the workdir)."""
    if not ctx.outputs.get("workers"):
        return None
    return str(Path(ctx.config.training.log_dir or ctx.workdir / "logs" / ctx.config.name).expanduser().resolve())
