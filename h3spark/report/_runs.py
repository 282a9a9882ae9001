"""Read a run's folder into what the plots need: its kind, its curves and (for an experiment) its trials.

Each kind is recognised by the file its command writes:

    experiment  EXPERIMENT_DIR/trials.jsonl, results.json, best.json; trials/NAME/events.out.tfevents.*
                (h3spark experiment, h3spark run with an experiment: section, tune.grid_search ...)
    training    LOG_DIR/events.out.tfevents.* with the engines' train/* scalars
                (h3spark train / h3spark run: WORKDIR/logs/NAME, or training.log_dir)
    actors      NETWORK_HOME/network.json and reports.jsonl (h3spark actors: WORKDIR/actors/NETWORK)
    gates       RUN_DIR/gates.json (h3spark gates: WORKDIR/gates/RUN_ID)

    >>> run = read_run("h3spark-work/experiments/quickstart")
    >>> run.kind, [curve.label for curve in run.curves][:2], run.trials.params
    ('experiment', ['trial 0', 'trial 0'], ['lr', 'hidden'])
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field

from h3spark.actors._history import REPORTS_NAME
from h3spark.actors._registry import STATE_NAME
from h3spark.errors import DataError, UsageError
from h3spark.gates._record import RESULT_NAME
from h3spark.report._events import event_files, read_folder_scalars, started_at
from h3spark.storage import local_path

logger = logging.getLogger(__name__)

KINDS = ("experiment", "training", "actors", "gates")
_HOW_TO_PRODUCE = ("h3spark experiment CONFIG (an experiment dir), h3spark train CONFIG (a training log dir, "
                   "WORKDIR/logs/NAME), h3spark actors CONFIG (WORKDIR/actors/NETWORK) or h3spark gates CONFIG "
                   "(WORKDIR/gates/RUN_ID)")


@dataclass(frozen=True)
class Curve:
    """One line of one panel: ``label``'s ``panel`` (e.g. trial 3's accuracy) against ``x``."""

    panel: str
    label: str
    x: list[float]
    y: list[float]
    x_label: str = "step"


@dataclass(frozen=True)
class Trials:
    """An experiment's trials: ``rows`` hold ``label``, ``status``, ``params`` (name -> value) and ``value``
    (the optimised metric, None when the trial has none)."""

    metric: str
    direction: str
    params: list[str]
    rows: list[dict]


@dataclass
class Run:
    """What one folder holds, as the plots need it."""

    kind: str
    name: str
    folder: str
    curves: list[Curve] = field(default_factory=list)
    trials: Trials | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def panels(self) -> list[str]:
        return list(dict.fromkeys(curve.panel for curve in self.curves))


def detect_kind(folder: str) -> str | None:
    """The kind of run ``folder`` holds, or None."""
    if _exists(folder, "trials.jsonl"):
        return "experiment"
    if _exists(folder, STATE_NAME):
        return "actors"
    if _exists(folder, RESULT_NAME):
        return "gates"
    if event_files(folder):
        return "training"
    return None


def read_run(folder: str) -> Run:
    """The run in ``folder``; a UsageError when it is missing, empty or of no known kind."""
    folder = _local_folder(folder)
    if not os.path.isdir(folder):
        raise UsageError(f"{folder}: no such directory. Give a directory a run wrote: {_HOW_TO_PRODUCE}.")
    kind = detect_kind(folder)
    if kind is None:
        raise UsageError(_unknown_message(folder))
    reader = {"experiment": _read_experiment, "training": _read_training, "actors": _read_actors,
              "gates": _read_gates}[kind]
    try:
        return reader(folder)
    except (AttributeError, TypeError, ValueError) as error:  # JSON that parsed, but not into the records expected
        raise DataError(f"{folder}: its {kind} files hold records of an unexpected shape ({type(error).__name__}: "
                        f"{error}); a file is damaged or was written by another program. Run the {kind} again.") from None


def _local_folder(folder: str) -> str:
    """A path or a file:// URI as an absolute path; another scheme (hdfs://) is a usage error."""
    if "://" in folder:
        if not folder.startswith("file://"):
            raise UsageError(f"{folder}: h3spark report reads a local folder; copy the run here first, e.g. "
                             f"hdfs dfs -get {folder} /tmp/run, then h3spark report /tmp/run")
        folder = local_path(folder)
    return os.path.abspath(os.path.expanduser(folder))


def _unknown_message(folder: str) -> str:
    if not os.listdir(folder):
        return f"{folder} is empty: it holds no run to report. Give a directory a run wrote: {_HOW_TO_PRODUCE}."
    found = [f"{path} ({kind})" for path, kind in runs_below(folder)]
    if found:
        return (f"{folder} is not itself a run, but holds runs; report one of them, e.g. h3spark report "
                f"{runs_below(folder)[0][0]}\n  " + "\n  ".join(found[:12]))
    return (f"{folder} holds no run h3spark knows (no trials.jsonl, network.json, {RESULT_NAME} or TensorBoard "
            f"event files). Give a directory a run wrote: {_HOW_TO_PRODUCE}.")


def runs_below(folder: str, depth: int = 3) -> list[tuple[str, str]]:
    """``(path, kind)`` of the runs in the folders below ``folder`` (e.g. a workdir), ``depth`` levels deep."""
    found = []
    try:
        entries = sorted(os.scandir(folder), key=lambda item: item.name)
    except OSError as error:  # a folder this user may not read: the list is a hint, the rest still helps
        logger.debug("not looking for runs in %s: %s", folder, error)
        return []
    for entry in entries:
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        kind = detect_kind(entry.path)
        if kind is not None:
            found.append((entry.path, kind))
        elif depth > 1:
            found += runs_below(entry.path, depth - 1)
    return found


# --- experiment -------------------------------------------------------------------------------

def _read_experiment(folder: str) -> Run:
    summary, rows = _load_json(folder, "best.json", dict), _load_json(folder, "results.json", list)
    metric, direction = summary.get("metric"), summary.get("direction", "max")
    if not isinstance(metric, str):
        raise DataError(f"{os.path.join(folder, 'best.json')} names no metric; the file is damaged. Run the "
                        "experiment (h3spark experiment CONFIG resumes it) to write it again.")
    params = list(dict.fromkeys(key[6:] for row in rows for key in row if key.startswith("param_")))
    run = Run("experiment", os.path.basename(folder), folder)
    table = []
    for row in rows:
        if not isinstance(row, dict) or "trial_id" not in row:
            raise DataError(f"{os.path.join(folder, 'results.json')}: a row has no trial_id; the file is damaged. "
                            "Run the experiment (h3spark experiment CONFIG resumes it) to write it again.")
        label = f"trial {row['trial_id']}"
        value = row.get(f"metric_{metric}")
        table.append({"label": label, "status": row.get("status"), "value": value if _finite(value) else None,
                      "params": {name: row.get(f"param_{name}") for name in params}})
        name = str(row.get("name") or "")
        if name in (".", "..") or name != os.path.basename(name):  # the logdir stays inside the experiment dir
            raise DataError(f"{os.path.join(folder, 'results.json')}: trial {row['trial_id']} names its logdir "
                            f"{name!r}, not a folder of trials/; the file is damaged. Run the experiment "
                            "(h3spark experiment CONFIG resumes it) to write it again.")
        run.curves += _folder_curves(os.path.join(folder, "trials", name), label) if name else []
    run.trials = Trials(metric, direction, params, table)
    if not run.curves:
        run.notes.append("no trial reported metrics per step (ctx.report), so there are no training curves")
    return run


def _load_json(folder: str, name: str, expected: type):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        raise UsageError(f"{folder} has a trials.jsonl but no {name}: the experiment is still running or stopped "
                         "before its end. Re-run it (h3spark experiment CONFIG resumes it), then report it.")
    return _read_json_file(path, expected, "the experiment (h3spark experiment CONFIG resumes it) to write it")


# --- training ---------------------------------------------------------------------------------

def _read_training(folder: str) -> Run:
    run = Run("training", os.path.basename(folder), folder, curves=_folder_curves(folder, "rank 0"))
    if not run.curves:
        raise UsageError(f"{folder} has TensorBoard event files but no scalars in them yet (the engines write "
                         "train/loss every 10 steps, and tensorboardX flushes every 2 minutes); report it once the "
                         "run has written some.")
    return run


def _folder_curves(folder: str, label: str) -> list[Curve]:
    """The curves of every event file in ``folder``; with several files (several runs), one line per file."""
    files = read_folder_scalars(folder)
    curves = []
    for path, scalars in files:
        curves += _curves(scalars, f"{label}, run of {started_at(path)}" if len(files) > 1 else label)
    return curves


def _curves(scalars: dict[str, list[tuple[int, float]]], label: str, x_label: str = "step") -> list[Curve]:
    curves = []
    for tag, points in scalars.items():
        points = [(step, value) for step, value in points if math.isfinite(value)]
        if points:
            curves.append(Curve(tag, label, [float(step) for step, _ in points], [value for _, value in points],
                                x_label))
    return curves


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- actors and gates -------------------------------------------------------------------------

def _read_actors(folder: str) -> Run:
    state = _read_json_file(os.path.join(folder, STATE_NAME), dict, "h3spark actors CONFIG")
    run = Run("actors", str(state.get("network") or os.path.basename(folder)), folder)
    history = _read_jsonl(os.path.join(folder, REPORTS_NAME))
    if not history:
        history = [{**report, "actor": name} for name, report in (state.get("actors") or {}).items()]
        run.notes.append(f"no {REPORTS_NAME} (a network older than the report history): one point per actor, "
                         "from its last report in network.json")
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for report in history:
        actor, x = report.get("actor"), report.get("at_s", 0.0)
        for panel, value in _actor_values(report).items():
            if isinstance(actor, str) and _finite(value) and _finite(x):
                series.setdefault((panel, actor), []).append((float(x), float(value)))
    panels = list(_actor_values({}))  # in this order, each actor's lines by name
    run.curves = [Curve(panel, actor, [x for x, _ in points], [y for _, y in points], "seconds")
                  for (panel, actor), points in sorted(series.items(), key=lambda item: (panels.index(item[0][0]),
                                                                                         item[0][1]))]
    return run


def _actor_values(report: dict) -> dict[str, float | None]:
    evaluated, predicted = report.get("evaluated") or {}, report.get("predicted") or {}
    return {"training loss": report.get("loss"), "held-out accuracy": evaluated.get("accuracy"),
            "accuracy of predictions": predicted.get("accuracy"), "step": report.get("step"),
            "messages handled": report.get("handled")}


def _read_gates(folder: str) -> Run:
    result = _read_json_file(os.path.join(folder, RESULT_NAME), dict, "h3spark gates CONFIG")
    run = Run("gates", f"{result.get('network', 'gates')} {result.get('run_id', '')}".strip(), folder)
    for sentinel, epochs in sorted((result.get("epochs") or {}).items()):
        for panel in ("loss", "accuracy"):
            points = [(e.get("epoch"), e.get(panel)) for e in epochs if _finite(e.get("epoch")) and _finite(e.get(panel))]
            if points:
                run.curves.append(Curve(f"training {panel}", sentinel, [float(x) for x, _ in points],
                                        [float(y) for _, y in points], "epoch"))
    for sentinel, scores in sorted((result.get("scores") or {}).items()):
        kind = scores[0].get("kind", "score") if scores else "score"
        for panel in ("loss", "accuracy"):
            points = [(s.get("at_s"), s.get(panel)) for s in scores if _finite(s.get("at_s")) and _finite(s.get(panel))]
            if points:
                run.curves.append(Curve(f"held-out {panel} (validation, test)", f"{sentinel} ({kind})",
                                        [float(x) for x, _ in points], [float(y) for _, y in points], "seconds"))
    for gate, report in sorted((result.get("gates") or {}).items()):
        delays = sorted((int(delay), count) for delay, count in (report.get("delays") or {}).items())
        if delays:
            run.curves.append(Curve("gradient delays (count per delay)", gate, [float(d) for d, _ in delays],
                                    [float(c) for _, c in delays], "delay (updates)"))
    return run


def _read_json_file(path: str, expected: type, command: str):
    """The JSON value of ``path``; a DataError naming it when it is no JSON or not of ``expected`` type."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not JSON ({error}); the file is damaged. Run {command} again.") from None
    if not isinstance(value, expected):
        raise DataError(f"{path} holds a {type(value).__name__}, not a {expected.__name__}; the file is damaged. "
                        f"Run {command} again.")
    return value


def _read_jsonl(path: str) -> list[dict]:
    """The records of a JSON-lines history; a torn last line (a killed writer) is skipped."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue
            raise DataError(f"{path} line {number} is not JSON; the file is damaged. Remove that line.") from None
        if isinstance(record, dict):
            records.append(record)
    return records


def _exists(folder: str, name: str) -> bool:
    return os.path.isfile(os.path.join(folder, name))
