"""What the plots show, worked out once for both renderers (matplotlib and bokeh).

A hyperparameter's values are plotted as numbers when every trial's value is one, else as
categories (their sorted text, at 0, 1, 2 ...). The parallel-coordinates view puts each
hyperparameter and the metric on its own vertical axis, scaled to [0, 1] between its smallest
and largest value, and draws each trial as a line across them.

    >>> axes = parallel_axes(run.trials)
    >>> axes.names, axes.lines[0]
    (['lr', 'hidden', 'accuracy'], [0.0, 1.0, 0.25])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from h3spark.report._runs import Trials

MAX_LEGEND_ENTRIES = 12


@dataclass(frozen=True)
class Axis:
    """One hyperparameter's values as positions: ``positions[i]`` for trial row i (None: no value);
    ``ticks``: (position, text) for categories, empty for numbers; ``log``: spans >= 100x, all > 0."""

    name: str
    positions: list[float | None]
    ticks: list[tuple[float, str]]
    log: bool = False


@dataclass(frozen=True)
class ParallelAxes:
    """Axis names, each trial's line (one position in [0, 1] per axis), its label and metric value."""

    names: list[str]
    lines: list[list[float]]
    labels: list[str]
    values: list[float]
    ranges: list[tuple[str, str]]  # each axis's (bottom, top) as text


def param_axis(trials: Trials, name: str) -> Axis:
    values = [row["params"].get(name) for row in trials.rows]
    present = [value for value in values if value is not None]
    if present and all(_number(value) for value in present):
        positive = [float(value) for value in present if float(value) > 0]
        log = len(positive) == len(present) and max(positive) / min(positive) >= 100
        return Axis(name, [None if value is None else float(value) for value in values], [], log)
    categories = sorted({str(value) for value in present})
    return Axis(name, [None if value is None else float(categories.index(str(value))) for value in values],
                [(float(index), text) for index, text in enumerate(categories)])


def metric_points(trials: Trials, axis: Axis) -> tuple[list[float], list[float], list[str]]:
    """(x, metric, label) of each trial that has both a value for ``axis`` and the metric."""
    points = [(x, row["value"], row["label"]) for x, row in zip(axis.positions, trials.rows)
              if x is not None and row["value"] is not None]
    return [x for x, _, _ in points], [y for _, y, _ in points], [label for _, _, label in points]


def parallel_axes(trials: Trials) -> ParallelAxes:
    """The trials that have the metric, as lines across the hyperparameters' axes and the metric's."""
    axes = [param_axis(trials, name) for name in trials.params]
    keep = [index for index, row in enumerate(trials.rows) if row["value"] is not None
            and all(axis.positions[index] is not None for axis in axes)]
    columns, ranges = [], []
    for axis in axes:
        column = [_scaled_input(axis, axis.positions[index]) for index in keep]
        scaled, bottom, top = _unit(column)
        columns.append(scaled)
        ranges.append(_range_text(axis, bottom, top))
    metric = [float(trials.rows[index]["value"]) for index in keep]
    scaled, bottom, top = _unit(metric)
    columns.append(scaled)
    ranges.append((f"{bottom:.4g}", f"{top:.4g}"))
    lines = [[column[row] for column in columns] for row in range(len(keep))]
    return ParallelAxes(trials.params + [trials.metric], lines, [trials.rows[index]["label"] for index in keep],
                        metric, ranges)


def _scaled_input(axis: Axis, position: float) -> float:
    return math.log10(position) if axis.log else position


def _unit(column: list[float]) -> tuple[list[float], float, float]:
    if not column:
        return [], 0.0, 0.0
    bottom, top = min(column), max(column)
    span = top - bottom
    return [0.5 if span == 0 else (value - bottom) / span for value in column], bottom, top


def _range_text(axis: Axis, bottom: float, top: float) -> tuple[str, str]:
    if axis.ticks:
        return axis.ticks[int(bottom)][1], axis.ticks[int(top)][1]
    if axis.log:
        return f"{10 ** bottom:.4g}", f"{10 ** top:.4g}"
    return f"{bottom:.4g}", f"{top:.4g}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
