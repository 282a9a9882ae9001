"""The report's PNGs, drawn with matplotlib's Agg backend (no display needed).

    curves.png                 one panel per metric (train/loss, accuracy, held-out accuracy ...), a line per
                               trial, rank, actor or sentinel
    hyperparameters.png        experiments: the metric against each hyperparameter, a point per trial
    parallel_coordinates.png   experiments: each trial as a line across the hyperparameters and the metric
"""

from __future__ import annotations

import os

from h3spark.report._layout import MAX_LEGEND_ENTRIES, metric_points, param_axis, parallel_axes
from h3spark.report._runs import Run, Trials

_PANEL_W, _PANEL_H, _DPI = 5.0, 3.4, 90


def write_pngs(run: Run, folder: str) -> list[str]:
    """Draw every PNG ``run`` has data for into ``folder``; their paths."""
    written = []
    if run.curves:
        written.append(_save(_curves_figure(run), os.path.join(folder, "curves.png")))
    if run.trials is not None and run.trials.rows:
        written.append(_save(_params_figure(run.trials), os.path.join(folder, "hyperparameters.png")))
        if run.trials.params:
            written.append(_save(_parallel_figure(run.trials), os.path.join(folder, "parallel_coordinates.png")))
    return written


def _figure(panels: int, columns: int = 2):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    columns = max(1, min(columns, panels))
    rows = -(-panels // columns)
    figure = Figure(figsize=(_PANEL_W * columns, _PANEL_H * rows), dpi=_DPI)
    figure.subplots_adjust(left=0.1 / columns ** 0.5, right=0.97, bottom=0.14 / rows ** 0.5, top=1 - 0.16 / rows ** 0.5,
                           wspace=0.3, hspace=0.45)  # not constrained or tight layout: each costs another draw
    return figure, [figure.add_subplot(rows, columns, index + 1) for index in range(panels)]


def _curves_figure(run: Run):
    panels = run.panels
    figure, axes = _figure(len(panels))
    for axis, panel in zip(axes, panels):
        curves = [curve for curve in run.curves if curve.panel == panel]
        for curve in curves:
            marker = "o" if len(curve.x) <= 20 else None
            axis.plot(curve.x, curve.y, label=curve.label, marker=marker, markersize=3, linewidth=1.2)
        axis.set_title(panel)
        axis.set_xlabel(curves[0].x_label)
        axis.grid(alpha=0.3)
        if len(curves) <= MAX_LEGEND_ENTRIES:
            axis.legend(fontsize="small")
    figure.suptitle(f"{run.kind} {run.name}")
    return figure


def _params_figure(trials: Trials):
    names = trials.params or []
    figure, axes = _figure(max(1, len(names)), columns=3)
    for axis, name in zip(axes, names):
        spec = param_axis(trials, name)
        x, y, _ = metric_points(trials, spec)
        axis.scatter(x, y)
        if spec.ticks:
            axis.set_xticks([position for position, _ in spec.ticks], [text for _, text in spec.ticks], rotation=30)
        elif spec.log:
            axis.set_xscale("log")
        axis.set_xlabel(name)
        axis.set_ylabel(trials.metric)
        axis.grid(alpha=0.3)
    if not names:
        axes[0].text(0.5, 0.5, "the search had no hyperparameters", ha="center", va="center")
    figure.suptitle(f"{trials.metric} ({trials.direction}) against each hyperparameter")
    return figure


def _parallel_figure(trials: Trials):
    import matplotlib

    view = parallel_axes(trials)
    figure, (axis,) = _figure(1)
    figure.set_size_inches(max(_PANEL_W, 1.8 * len(view.names)), _PANEL_H + 0.6)
    figure.subplots_adjust(left=0.08, right=0.92, bottom=0.14, top=0.86)
    colours = matplotlib.colormaps["viridis"]
    low, high = (min(view.values), max(view.values)) if view.values else (0.0, 0.0)
    for line, value in zip(view.lines, view.values):
        share = 0.5 if high == low else (value - low) / (high - low)
        axis.plot(range(len(view.names)), line, color=colours(share), alpha=0.8, linewidth=1.2)
    for index, (bottom, top) in enumerate(view.ranges):
        axis.axvline(index, color="grey", linewidth=0.8)
        axis.annotate(bottom, (index, -0.04), ha="center", va="top", fontsize="small", annotation_clip=False)
        axis.annotate(top, (index, 1.04), ha="center", va="bottom", fontsize="small", annotation_clip=False)
    axis.set_xticks(range(len(view.names)), view.names)
    axis.set_yticks([])
    axis.set_ylim(-0.15, 1.15)
    axis.set_title(f"{len(view.lines)} trials; colour: {trials.metric} ({trials.direction})")
    return figure


def _save(figure, path: str) -> str:
    """Write ``figure`` to ``path`` through a hidden temporary file, so a crash leaves no half image there."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}.tmp")
    figure.savefig(partial, format="png")
    os.replace(partial, path)
    return path
