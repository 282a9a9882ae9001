"""The results of an experiment: the table, the leaderboard, the plot and the best trial.

Metrics that are not numbers (a string, a list, a NaN that became null) are kept in
``trials.jsonl`` but cannot go into the table's numeric columns: each such (trial, metric)
is a warning, logged once when it arrives and listed in the summary
(``ExperimentResult.warnings``, ``best.json``). The optimised metric itself must be a
number: a trial that returns anything else fails, naming the value.
"""

from __future__ import annotations

import io
import json
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from h3spark.storage import filesystem_for, join_uri
from h3spark.tune._naming import format_value

logger = logging.getLogger(__name__)

_BASE_COLUMNS = ["trial_id", "name", "status", "generation"]
_TAIL_COLUMNS = ["duration_s", "started_at", "ended_at", "slot", "gpus", "logdir", "model", "error"]


@dataclass
class ExperimentResult:
    """What a search returns: the best trial and the whole results table."""

    best_params: dict[str, Any] | None
    best_metrics: dict[str, Any] | None
    best_logdir: str | None
    best_trial_id: int | None
    results: pd.DataFrame
    experiment_dir: str
    metric: str
    direction: str
    dispatch_gaps_ms: list[float] = field(default_factory=list, repr=False)
    warnings: list[str] = field(default_factory=list)

    def leaderboard(self, top: int = 10) -> str:
        return leaderboard(self.results, self.metric, self.direction, top)


def is_number(value: Any) -> bool:
    """A finite float, or an int that fits a Parquet int64 column."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) if isinstance(value, float) else -(1 << 63) <= value < 1 << 63


class SummaryWarnings:
    """What the summary must mention; each (trial, metric, kind) logged once as it arrives."""

    def __init__(self):
        self.lines: list[str] = []
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()

    def add(self, text: str, key: tuple | None = None) -> None:
        with self._lock:
            if key is not None and key in self._seen:
                return
            self._seen.add(key)
            self.lines.append(text)
        logger.warning("%s", text)

    def check_metrics(self, trial_id: int, metrics: dict, step: int | None = None) -> None:
        """Warn about each metric that is not a finite number (``step``: from a report, else returned)."""
        for name, value in metrics.items():
            if is_number(value):
                continue
            shown = "null (a NaN or inf becomes null)" if value is None else f"{_shown(value)} ({type(value).__name__})"
            if step is None:
                text = (f"trial {trial_id} returned metric {name!r} = {shown}, not a number: it is kept in "
                        "trials.jsonl and left out of the results table")
            else:
                text = (f"trial {trial_id} reported metric {name!r} = {shown} at step {step}, not a number: "
                        "TensorBoard and early stopping skip it")
            self.add(text, (trial_id, name, step is None))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def results_frame(records: list[dict], param_names: list[str]) -> pd.DataFrame:
    """One row per trial: params as ``param_<name>``, metrics as ``metric_<name>``."""
    rows = []
    for record in sorted(records, key=lambda item: item["trial_id"]):
        row = {key: record.get(key) for key in _BASE_COLUMNS}
        row.update({f"param_{name}": record.get("params", {}).get(name) for name in param_names})
        row.update({f"metric_{name}": value for name, value in (record.get("metrics") or {}).items()
                    if is_number(value)})  # the others were warned about when they arrived
        started, ended = record.get("started_at"), record.get("ended_at")
        row["duration_s"] = round(ended - started, 3) if started and ended else None
        row.update({key: record.get(key) for key in _TAIL_COLUMNS if key not in ("duration_s", "gpus")})
        row["gpus"] = ",".join(record.get("gpus") or [])
        rows.append(row)
    frame = pd.DataFrame(rows)
    metric_columns = sorted(column for column in frame.columns if column.startswith("metric_"))
    ordered = _BASE_COLUMNS + [f"param_{name}" for name in param_names] + metric_columns + _TAIL_COLUMNS
    return frame.reindex(columns=ordered)


def best_row(frame: pd.DataFrame, metric: str, direction: str) -> pd.Series | None:
    column = f"metric_{metric}"
    if frame.empty or column not in frame:
        return None
    usable = frame[frame["status"].isin(["completed", "stopped"]) & frame[column].notna()]
    if usable.empty:
        return None
    index = usable[column].idxmax() if direction == "max" else usable[column].idxmin()
    return usable.loc[index]


def leaderboard(frame: pd.DataFrame, metric: str, direction: str, top: int = 10) -> str:
    """A plain-text table of the best trials, then a count of the others by status."""
    column = f"metric_{metric}"
    if frame.empty:
        return "no trials"
    if column not in frame:
        frame = frame.assign(**{column: float("nan")})
    done = frame[frame[column].notna()]
    ranked = done.sort_values(column, ascending=direction == "min", kind="stable").head(top)
    params = [name for name in frame.columns if name.startswith("param_")]
    header = ["rank", "trial", metric, "status", "time_s"] + [name[6:] for name in params]
    lines = [header]
    for rank, (_, row) in enumerate(ranked.iterrows(), start=1):
        lines.append([str(rank), str(row["trial_id"]), format_value(row[column]), row["status"],
                      format_value(row["duration_s"]) if row["duration_s"] == row["duration_s"] else "-"]
                     + [format_value(row[name]) for name in params])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    counts = frame["status"].value_counts().to_dict()
    text.append("trials: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())))
    return "\n".join(text)


def plot_png(frame: pd.DataFrame, metric: str, param_names: list[str]) -> bytes:
    """A PNG with one panel per hyperparameter: the metric of each trial against its value."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    column = f"metric_{metric}"
    count = max(1, len(param_names))
    figure = Figure(figsize=(4 * count, 3.2), dpi=80)
    figure.subplots_adjust(left=0.18 / count ** 0.5, right=0.97, bottom=0.22, top=0.95, wspace=0.35)  # no tight_layout: a second draw
    done = frame[frame[column].notna()] if column in frame else frame.iloc[:0]
    for index, name in enumerate(param_names or ["trial_id"]):
        axes = figure.add_subplot(1, count, index + 1)
        values = done[f"param_{name}"] if name != "trial_id" else done["trial_id"]
        _scatter(axes, values, done[column] if column in done else [])
        axes.set_xlabel(name)
        axes.set_ylabel(metric)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _scatter(axes, values, metric_values) -> None:
    numeric = pd.to_numeric(values, errors="coerce")
    if len(values) and numeric.notna().all():
        axes.scatter(numeric, metric_values)
        positive = numeric[numeric > 0]
        if len(positive) == len(numeric) and positive.max() / positive.min() >= 100:
            axes.set_xscale("log")
        return
    labels = sorted({str(value) for value in values})
    axes.scatter([labels.index(str(value)) for value in values], metric_values)
    axes.set_xticks(range(len(labels)), labels, rotation=30)


def write_results(experiment_dir: str, frame: pd.DataFrame, metric: str, direction: str, param_names: list[str],
                  warnings: list[str] = ()) -> None:
    """results.parquet, results.json, best.json (with the summary's warnings) and metric_vs_params.png, each replaced whole."""
    fs = filesystem_for(experiment_dir)
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    _replace(fs, join_uri(experiment_dir, "results.parquet"), parquet.getvalue())
    records = json.loads(frame.to_json(orient="records"))
    _replace(fs, join_uri(experiment_dir, "results.json"), json.dumps(records, indent=1).encode())
    best = best_row(frame, metric, direction)
    summary = {"metric": metric, "direction": direction, "best": None if best is None else json.loads(best.to_json()),
               "warnings": list(warnings)}
    _replace(fs, join_uri(experiment_dir, "best.json"), json.dumps(summary, indent=1).encode())
    _replace(fs, join_uri(experiment_dir, "metric_vs_params.png"), plot_png(frame, metric, param_names))
    if best is not None and isinstance(best.get("model"), str):
        source = join_uri(best["logdir"], "model")  # the logdir the driver derived, inside experiment_dir
        if fs.exists(source):
            _copy_tree(fs, source, join_uri(experiment_dir, "best_model"))
        else:
            logger.warning("the best trial's model is missing from %s; best_model/ is not written trial=%s",
                           source, best["trial_id"])


def _replace(fs, uri: str, data: bytes) -> None:
    """Write beside the target, then swap it in, so readers never see half a file."""
    tmp = uri + ".tmp"
    fs.write_bytes(tmp, data)
    fs.delete(uri)
    fs.rename(tmp, uri)


def _copy_tree(fs, source: str, target: str) -> None:
    fs.delete(target)
    fs.makedirs(target)
    for name in fs.listdir(source):
        path = join_uri(source, name)
        if fs.isdir(path):
            _copy_tree(fs, path, join_uri(target, name))
        else:
            fs.write_bytes(join_uri(target, name), fs.read_bytes(path))


def dispatch_gaps_ms(records: list[dict]) -> list[float]:
    """Per slot, the time from one trial's end to the next trial's start, in ms."""
    by_slot: dict[Any, list[dict]] = {}
    for record in records:
        if record.get("started_at") and record.get("ended_at") and record.get("slot") is not None:
            by_slot.setdefault(record["slot"], []).append(record)
    gaps = []
    for slot_records in by_slot.values():
        slot_records.sort(key=lambda item: item["started_at"])
        gaps += [1000 * (after["started_at"] - before["ended_at"]) for before, after in zip(slot_records, slot_records[1:])]
    return [gap for gap in gaps if math.isfinite(gap)]
