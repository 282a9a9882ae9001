"""Reports: the plots of a finished run (an experiment, a training run, an actor network, a gates run)
as PNGs (matplotlib) and one self-contained interactive HTML page (bokeh).

    >>> from h3spark.report import write_report
    >>> write_report("h3spark-work/experiments/quickstart").paths
"""

from h3spark.report._api import HTML_NAME, REPORT_DIR, Report, write_report
from h3spark.report._runs import KINDS, Curve, Run, Trials, detect_kind, read_run, runs_below

__all__ = ["write_report", "Report", "read_run", "detect_kind", "runs_below", "Run", "Curve", "Trials", "KINDS",
           "REPORT_DIR", "HTML_NAME"]
