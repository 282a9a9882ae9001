"""The network's page in a real headless chromium: curves and actors from the network's reports, a digit
drawn with the mouse answered by the actors and the master, and writes refused without the token."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from h3spark.config import H3SparkConfig
from h3spark.web import WebApp
from tests.integration.web.conftest import wait_until

TOKEN = "p" * 24


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    learner = {"inputs": {"digits.raw": "train", "web.draw": "predict"},
               "model": {"engine": "numpy", "mlp": {"input_shape": [64], "hidden": [32], "classes": 10}},
               "training": {"optimizer": "adam", "lr": 0.01, "batch_size": 32},
               "pipeline": {"steps": [{"kind": "image", "columns": ["features"], "shape": [64]}], "fit_rows": 64},
               "outputs": {"predictions": "web.predictions"}, "stop_at_end": False}
    producer = {"source": {"bundled": "digits"}, "topic": "digits.raw", "records_per_message": 32, "epochs": 3,
                "holdout_fraction": 0.2, "seed": 1, "rate_per_s": 1000}
    config = H3SparkConfig.model_validate({
        "name": "page", "actors": {"transport": "memory", "progress_s": 0.3, "producers": {"digits": producer},
                                   "actors": {"learner": learner}},
        "web": {"port": 0, "downpour": {"data": {"shards": 2}}}})
    app = WebApp(config, str(tmp_path_factory.mktemp("page")), token=TOKEN)
    app.start()
    yield app
    app.stop()


def page(browser, app, token: str | None):
    browser.get(app.server.url + (f"#token={token}" if token else ""))
    wait_until(lambda: browser.execute_script("return window.h3Page.welcome !== null"), "the welcome")


def draw_a_one(browser):
    pad = browser.find_element(By.ID, "pad")
    ActionChains(browser).move_to_element_with_offset(pad, 0, -60).click_and_hold() \
        .move_by_offset(2, 40).move_by_offset(2, 40).move_by_offset(0, 40).release().perform()


def test_the_page_shows_each_actors_curve_and_the_network(fresh_window, app):
    browser = fresh_window
    page(browser, app, TOKEN)
    wait_until(lambda: browser.execute_script("return window.h3Page.points") > 2, "curve points")
    rows = wait_until(lambda: [row for row in browser.execute_script(  # the table is redrawn at each update
        "return [...document.querySelectorAll('#actors tbody tr')].map((row) => row.innerText)")
        if row.startswith("learner")], "the learner's row")
    assert "digits.raw (train)" in rows[0] and "web.draw (predict)" in rows[0] and "predictions: web.predictions" in rows[0]
    assert "producer digits -> digits.raw" in browser.find_element(By.ID, "producers").text
    assert browser.execute_script("return window.h3Page.updates") >= 1


def test_a_digit_drawn_with_the_mouse_is_answered_by_the_actor_and_the_master(fresh_window, app):
    browser = fresh_window
    page(browser, app, TOKEN)
    assert browser.execute_script("return window.h3Page.welcome.predictors") == ["learner", "downpour"]
    wait_until(lambda: (app.network.status().get("learner", {}).get("step") or 0) > 0, "the learner to train")

    def answered():
        draw_a_one(browser)
        return wait_until(lambda: browser.execute_script(
            "const p = window.h3Page.predictions; const last = p[Object.keys(p).pop()] || {};"
            "return last.learner && last.downpour ? last : null;"), "both answers", timeout_s=5)

    answers = wait_until(lambda: _try(answered), "a drawing answered by the learner and the master", timeout_s=120)
    for actor in ("learner", "downpour"):
        assert 0 <= answers[actor]["label"] <= 9 and len(answers[actor]["probabilities"]) == 10
    table = browser.find_element(By.ID, "predictions").text
    assert "learner" in table and "downpour" in table
    assert browser.execute_script("return window.h3Page.roundTrips.length") >= 1
    widths = browser.execute_script("return [...document.querySelectorAll('#predictions .bar')].map((b) => b.offsetWidth)")
    assert widths and all(width > 0 for width in widths)  # drawn through the CSSOM: the policy refuses style attributes
    refused = [entry["message"] for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]
    assert refused == []


def _try(attempt):
    try:
        return attempt()
    except TimeoutError:
        return None


def test_without_the_token_the_page_reads_but_a_drawing_is_refused(fresh_window, app):
    browser = fresh_window
    page(browser, app, None)
    assert browser.execute_script("return window.h3Page.authenticated") is False
    assert "read-only" in browser.find_element(By.ID, "access").text
    draw_a_one(browser)
    error = wait_until(lambda: browser.execute_script("return window.h3Page.errors[0] || null"), "the refusal")
    assert error["code"] == "unauthorized" and error["ref"] == "predict"
    assert "needs the token" in browser.find_element(By.ID, "errors").text


def test_a_worker_page_without_the_token_does_not_train(fresh_window, app):
    browser = fresh_window
    joined = len(app.master.workers)
    browser.get(f"{app.server.url}worker?autostart=1")
    state = wait_until(lambda: browser.execute_script(
        "const s = window.h3Worker.state; return s.phase === 'failed' ? s : null;"), "the worker to give up")
    assert "did not take the token" in state["error"] and len(app.master.workers) == joined
