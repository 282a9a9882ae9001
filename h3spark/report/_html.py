"""The report's interactive page: one self-contained HTML file drawn with bokeh.

Bokeh's JavaScript is inlined (``bokeh.resources.INLINE``), so the page renders offline and fetches
nothing. Each line is a renderer named ``PANEL: LABEL`` (e.g. ``accuracy: trial 3``); a click on a
legend entry hides its line; hovering a point or a trial's line shows what it is.
"""

from __future__ import annotations

import html

from h3spark.errors import missing_dependency
from h3spark.report._layout import MAX_LEGEND_ENTRIES, metric_points, param_axis, parallel_axes
from h3spark.report._runs import Run, Trials

_WIDTH, _HEIGHT = 520, 340
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf")


def render_html(run: Run) -> str:
    """The page of ``run``: its curves, and for an experiment its hyperparameters and parallel coordinates."""
    bokeh = _import_bokeh()
    parts = [bokeh.models.Div(text=_header(run), sizing_mode="stretch_width")]
    if run.curves:
        parts.append(bokeh.layouts.gridplot(_curve_figures(bokeh, run), ncols=2))
    if run.trials is not None and run.trials.rows:
        parts.append(bokeh.layouts.gridplot(_param_figures(bokeh, run.trials), ncols=3))
        if run.trials.params:
            parts.append(_parallel_figure(bokeh, run.trials))
    return bokeh.embed.file_html(bokeh.layouts.column(*parts), resources=bokeh.resources.INLINE,
                                 title=f"h3spark report: {run.kind} {run.name}")


def _import_bokeh():
    try:
        import bokeh.embed
        import bokeh.layouts
        import bokeh.models
        import bokeh.palettes
        import bokeh.plotting
        import bokeh.resources
    except ImportError:
        raise missing_dependency("bokeh", "The HTML page of h3spark report", extra="report") from None
    return bokeh


def _header(run: Run) -> str:
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in run.notes)
    return (f"<h2>h3spark report: {html.escape(run.kind)} {html.escape(run.name)}</h2>"
            f"<p>{html.escape(run.folder)}</p>" + (f"<ul>{notes}</ul>" if notes else ""))


def _curve_figures(bokeh, run: Run) -> list:
    figures = []
    for panel in run.panels:
        curves = [curve for curve in run.curves if curve.panel == panel]
        plot = bokeh.plotting.figure(title=panel, width=_WIDTH, height=_HEIGHT, x_axis_label=curves[0].x_label,
                                     tools="pan,wheel_zoom,box_zoom,reset,save,hover",
                                     tooltips=[("", "$name"), ("x", "$x{0.[00]}"), ("y", "$y{0.[0000]}")])
        legend = len(curves) <= MAX_LEGEND_ENTRIES  # more lines: the hover names each one
        for index, curve in enumerate(curves):
            style = {"name": f"{panel}: {curve.label}", "color": _PALETTE[index % len(_PALETTE)],
                     **({"legend_label": curve.label} if legend else {})}
            if len(curve.x) == 1:  # one renderer per name: BokehJS's get_model_by_name refuses two
                plot.scatter(curve.x, curve.y, size=7, **style)
            else:
                plot.line(curve.x, curve.y, line_width=1.5, **style)
        if legend:
            plot.legend.click_policy = "hide"
            plot.legend.label_text_font_size = "8pt"
        figures.append(plot)
    return figures


def _param_figures(bokeh, trials: Trials) -> list:
    figures = []
    for name in trials.params:
        axis = param_axis(trials, name)
        x, y, labels = metric_points(trials, axis)
        plot = bokeh.plotting.figure(title=f"{trials.metric} against {name}", width=_WIDTH * 2 // 3,
                                     height=_HEIGHT, x_axis_label=name, y_axis_label=trials.metric,
                                     x_axis_type="log" if axis.log else "linear",
                                     tools="pan,wheel_zoom,box_zoom,reset,save,hover",
                                     tooltips=[("trial", "@label"), (name, "@x"), (trials.metric, "@y")])
        source = bokeh.models.ColumnDataSource({"x": x, "y": y, "label": labels})
        plot.scatter("x", "y", source=source, size=8, name=f"{trials.metric} against {name}")
        if axis.ticks:
            plot.xaxis.ticker = [position for position, _ in axis.ticks]
            plot.xaxis.major_label_overrides = {position: text for position, text in axis.ticks}
        figures.append(plot)
    return figures


def _parallel_figure(bokeh, trials: Trials):
    view = parallel_axes(trials)
    low, high = (min(view.values), max(view.values)) if view.values else (0.0, 0.0)
    palette = bokeh.palettes.Viridis256
    colours = [palette[int(255 * (0.5 if high == low else (value - low) / (high - low)))] for value in view.values]
    source = bokeh.models.ColumnDataSource({
        "xs": [list(range(len(view.names))) for _ in view.lines], "ys": view.lines, "color": colours,
        "label": view.labels, "value": view.values})
    plot = bokeh.plotting.figure(title=f"parallel coordinates: {len(view.lines)} trials, colour by {trials.metric} "
                                       f"({trials.direction})", width=max(_WIDTH, 170 * len(view.names)),
                                 height=_HEIGHT + 40, y_range=(-0.15, 1.15), tools="pan,box_zoom,reset,save,hover",
                                 tooltips=[("trial", "@label"), (trials.metric, "@value")])
    plot.multi_line("xs", "ys", source=source, line_color="color", line_width=2, line_alpha=0.8,
                    hover_line_width=4, name="trials")
    plot.xaxis.ticker = list(range(len(view.names)))
    plot.xaxis.major_label_overrides = {index: f"{name}\n{bottom} .. {top}" for index, (name, (bottom, top))
                                        in enumerate(zip(view.names, view.ranges))}
    plot.yaxis.visible = False
    return plot
