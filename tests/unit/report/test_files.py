"""The report's files: PNGs that are images, and one HTML page whose bokeh plots carry each series
by name, with bokeh's JavaScript inline (nothing is fetched when the page opens)."""

from __future__ import annotations

import json
import os
import re

import pytest
from PIL import Image

from h3spark.report import write_report


@pytest.fixture(scope="module")
def experiment_report(experiment_dir, tmp_path_factory):
    return write_report(experiment_dir, str(tmp_path_factory.mktemp("report") / "out"))


def assert_png(path: str) -> None:
    assert os.path.getsize(path) > 0
    with Image.open(path) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


def page_json(path: str) -> list[dict]:
    """The bokeh documents embedded in the page (bokeh writes them as JSON in a script tag)."""
    text = open(path, encoding="utf-8").read()
    found = re.findall(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', text, re.S)
    assert found, "the page embeds no bokeh document"
    return [document for block in found for document in json.loads(block).values()]


def renderer_names(path: str) -> list[str]:
    names = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and node.get("name") == "GlyphRenderer":
                names.append(node.get("attributes", {}).get("name"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(page_json(path))
    assert len(names) == len(set(names)), "two renderers share a name (BokehJS's get_model_by_name refuses them)"
    return names


def test_an_experiments_report_has_curves_hyperparameters_and_parallel_coordinates(experiment_report):
    names = [os.path.basename(path) for path in experiment_report.paths]
    assert names == ["curves.png", "hyperparameters.png", "parallel_coordinates.png", "report.html"]
    for path in experiment_report.paths[:-1]:
        assert_png(path)


def test_the_page_holds_a_named_line_per_trial_and_metric_and_the_trial_views(experiment_report):
    names = set(renderer_names(experiment_report.html_path))
    assert {f"{metric}: trial {trial}" for metric in ("accuracy", "loss") for trial in (0, 1, 2)} <= names
    assert {"accuracy against lr", "accuracy against hidden", "trials"} <= names


def test_the_page_is_self_contained(experiment_report):
    text = open(experiment_report.html_path, encoding="utf-8").read()
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=", text)
    assert "Bokeh.embed.embed_items" in text and len(text) > 500_000  # bokeh's JavaScript is in the page


def test_the_report_goes_into_the_runs_folder_by_default(training_dir):
    report = write_report(training_dir)
    assert [os.path.dirname(path) for path in report.paths] == [os.path.join(training_dir, "report")] * 2
    assert_png(report.paths[0])
    assert {"train/loss: rank 0", "train/samples_per_s: rank 0"} <= set(renderer_names(report.html_path))


def test_an_actor_networks_page_names_each_actors_lines(actors_dir, tmp_path):
    actors = write_report(actors_dir, str(tmp_path / "actors"))
    assert {"training loss: learner", "held-out accuracy: learner"} <= set(renderer_names(actors.html_path))


def test_a_gates_page_names_each_sentinels_and_gates_lines(gates_dir, tmp_path):
    gates = write_report(gates_dir, str(tmp_path / "gates"))
    assert {"training accuracy: train-1", "held-out loss (validation, test): val (validation)",
            "gradient delays (count per delay): g2"} <= set(renderer_names(gates.html_path))
    assert_png(gates.paths[0])


def test_a_page_with_many_lines_names_each_by_hover_instead_of_a_legend(tmp_path):
    from h3spark.report._html import render_html
    from h3spark.report._runs import Curve, Run

    run = Run("training", "many", str(tmp_path), [Curve("loss", f"rank {rank}", [0.0, 1.0], [1.0, 0.5])
                                                   for rank in range(20)])
    (tmp_path / "page.html").write_text(render_html(run))
    assert {f"loss: rank {rank}" for rank in range(20)} <= set(renderer_names(str(tmp_path / "page.html")))
    assert '"name":"Legend"' not in (tmp_path / "page.html").read_text()


def test_an_experiment_whose_trials_report_no_steps_shows_each_final_metric_as_a_point(tmp_path):
    from h3spark.tune import grid_search

    folder = str(tmp_path / "search")
    grid_search(lambda params, ctx: {"accuracy": params["C"] / 10}, {"C": [1.0, 2.0, 4.0]}, metric="accuracy",
                experiment_dir=folder, executor="threads", parallelism=1)
    report = write_report(folder)
    assert [os.path.basename(path) for path in report.paths] == [
        "curves.png", "hyperparameters.png", "parallel_coordinates.png", "report.html"]
    # a trial's end writes its returned metrics at its last step (0 here): one point per trial
    assert [(curve.label, curve.x, curve.y) for curve in report.run.curves] == [
        ("trial 0", [0.0], [pytest.approx(0.1)]), ("trial 1", [0.0], [pytest.approx(0.2)]),
        ("trial 2", [0.0], [pytest.approx(0.4)])]
    assert set(renderer_names(report.html_path)) == {"accuracy: trial 0", "accuracy: trial 1", "accuracy: trial 2",
                                                     "accuracy against C", "trials"}
