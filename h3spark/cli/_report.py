"""``h3spark report DIR``: the plots of a finished run, as PNGs and one interactive HTML page.

    h3spark report h3spark-work/experiments/quickstart     # an experiment (h3spark experiment)
    h3spark report h3spark-work/logs/train_mxnet           # a training run's TensorBoard log dir (h3spark train)
    h3spark report h3spark-work/actors/actors-online       # an actor network (h3spark actors)
    h3spark report h3spark-work/gates/RUN_ID               # a gates run (h3spark gates)

It finds the kind of run by the files in DIR, writes DIR/report/ (or --out) and prints the paths.
The HTML page carries its JavaScript inline: open it from disk, offline.
"""

from __future__ import annotations

import argparse

from h3spark.cli._common import print_summary


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "report", parents=[common.plain], help="plot a finished run (experiment, training, actors or gates) as PNGs "
        "and one interactive HTML page", description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", metavar="DIR", help="the folder a run wrote (see above)")
    parser.add_argument("--out", metavar="DIR", default=None, help="where to write the report (default: DIR/report)")
    parser.set_defaults(func=_report)


def _report(args) -> int:
    from h3spark.report import write_report

    print(f"h3spark report: reading {args.folder}", flush=True)
    report = write_report(args.folder, args.out)
    run = report.run
    panels = f"{len(run.panels)} panels, {len(run.curves)} lines" if run.curves else "no curves"
    rows = [("run", f"{run.kind} {run.name} ({run.folder})"), ("curves", panels)]
    if run.trials is not None:
        rows.append(("trials", f"{len(run.trials.rows)}, metric {run.trials.metric} ({run.trials.direction}), "
                               f"hyperparameters {', '.join(run.trials.params) or 'none'}"))
    rows += [("note", note) for note in run.notes]
    rows += [("png" if path.endswith(".png") else "html", path) for path in report.paths]
    print_summary(f"h3spark report {run.name}: done", rows)
    return 0
