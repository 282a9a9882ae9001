"""``write_report``: what ``h3spark report DIR`` runs.

    >>> report = write_report("h3spark-work/experiments/quickstart")
    >>> report.paths
    ['.../report/curves.png', '.../report/hyperparameters.png', '.../report/parallel_coordinates.png',
     '.../report/report.html']
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from h3spark.errors import UsageError
from h3spark.report._html import render_html
from h3spark.report._png import write_pngs
from h3spark.report._runs import Run, read_run

logger = logging.getLogger(__name__)

REPORT_DIR = "report"
HTML_NAME = "report.html"


@dataclass
class Report:
    """The run that was reported and the files written (the PNGs, then the HTML page)."""

    run: Run
    paths: list[str] = field(default_factory=list)

    @property
    def html_path(self) -> str:
        return self.paths[-1]


def write_report(folder: str, out: str | None = None) -> Report:
    """Read the run in ``folder`` and write its PNGs and HTML page into ``out`` (default ``folder/report``)."""
    run = read_run(folder)
    target = os.path.abspath(os.path.expanduser(out)) if out else os.path.join(run.folder, REPORT_DIR)
    if os.path.exists(target) and not os.path.isdir(target):
        raise UsageError(f"--out {target} is a file; give a directory for the report (it is created if missing).")
    os.makedirs(target, exist_ok=True)
    logger.debug("reporting %s run=%s curves=%d out=%s", run.kind, run.folder, len(run.curves), target)
    report = Report(run, write_pngs(run, target))
    page = os.path.join(target, HTML_NAME)
    text = render_html(run)  # before the file is opened: a failure leaves no empty page behind
    partial = os.path.join(target, f".{HTML_NAME}.tmp")  # a crash leaves no half page under the final name
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, page)
    report.paths.append(page)
    return report
