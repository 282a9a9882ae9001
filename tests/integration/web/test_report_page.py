"""``h3spark report``'s page in a real headless chromium: a real experiment (a search on the threads
executor, TensorBoard logs per trial) and a real actor network are reported, and their pages, opened
from disk, render every bokeh plot with bokeh's inline JavaScript and log no error to the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from h3spark.cli import main
from tests.integration.web.conftest import wait_until

ONLINE = str(Path(__file__).resolve().parents[3] / "conf" / "actors_online.yaml")

# Bokeh 3 draws each plot on canvases inside its elements' shadow roots
COUNT_CANVASES = """
const count = (root) => [...root.querySelectorAll('*')].reduce(
    (n, el) => n + (el.shadowRoot ? count(el.shadowRoot) : 0), root.querySelectorAll('canvas').length);
return count(document);
"""
FIGURES = "return window.Bokeh ? Bokeh.documents.flatMap((d) => [...d.all_models]).filter((m) => m.type === 'Figure' || m.constructor.name === 'Figure').length : 0"


def train_fn(params, ctx):
    for step in range(5):
        ctx.report({"accuracy": 0.5 + 0.05 * step * params["lr"], "loss": 1.0 / (step + 1)}, step=step)
    return {"accuracy": 0.6 + params["lr"] / 10}


@pytest.fixture(scope="module")
def experiment_page(tmp_path_factory):
    from h3spark.tune import grid_search

    folder = str(tmp_path_factory.mktemp("report") / "experiment")
    grid_search(train_fn, {"lr": [0.1, 1.0], "act": ["relu", "tanh"]}, metric="accuracy", experiment_dir=folder,
                executor="threads", parallelism=2)
    assert main(["report", folder]) == 0
    return Path(folder) / "report" / "report.html"


def open_page(browser, path: Path, figures: int) -> None:
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(path.as_uri())
    wait_until(lambda: browser.execute_script(FIGURES) >= figures, f"{figures} bokeh figures in {path}")
    wait_until(lambda: browser.execute_script(COUNT_CANVASES) >= figures, f"the canvases of {figures} figures")


def severe_entries(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_an_experiments_page_renders_its_plots_without_console_errors(fresh_window, experiment_page):
    browser = fresh_window
    open_page(browser, experiment_page, figures=5)  # accuracy, loss; accuracy against lr and act; parallel coordinates
    assert browser.execute_script(FIGURES) == 5
    named = browser.execute_script(
        "return arguments[0].map((name) => Bokeh.documents.some((d) => d.get_model_by_name(name) !== null))",
        ["accuracy: trial 0", "loss: trial 3", "accuracy against act", "trials"])
    assert named == [True, True, True, True]
    assert browser.title == "h3spark report: experiment experiment"
    assert severe_entries(browser) == []


def test_an_actor_networks_page_renders_each_actors_curves(fresh_window, tmp_path):
    assert main(["actors", ONLINE, "--workdir", str(tmp_path), "--set", "actors.producers.digits.epochs=1",
                 "--set", "actors.producers.digits.holdout_fraction=0.05"]) == 0
    home = tmp_path / "actors" / "actors-online"
    assert main(["report", str(home)]) == 0
    browser = fresh_window
    open_page(browser, home / "report" / "report.html", figures=4)
    assert browser.execute_script("return Bokeh.documents[0].get_model_by_name('held-out accuracy: learner') !== null")
    assert severe_entries(browser) == []
