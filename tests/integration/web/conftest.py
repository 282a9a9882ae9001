"""A real headless browser: Debian's chromium driven by its chromedriver through Selenium. Nothing downloads a
browser or a driver: the paths are given, and Selenium Manager is told to stay offline."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import require

CHROMIUM = os.environ.get("H3SPARK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("H3SPARK_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_S = 240.0  # an upper bound on a 2-core machine shared with other work; no test depends on the speed


def browser_options():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                     "--disable-backgrounding-occluded-windows", "--window-size=1100,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the session (tests open and close their own windows)."""
    require(os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK),
            f"the browser tests need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); install them: "
            "apt-get install chromium chromium-driver (scripts/setup.sh does it when run as root)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        require(False, "the browser tests need selenium (pinned in requirements.lock); run scripts/setup.sh")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser or a driver
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=browser_options())
    yield driver
    driver.quit()


@pytest.fixture
def fresh_window(browser):
    """Leave the browser with one blank window after the test, whatever it opened."""
    yield browser
    handles = browser.window_handles
    for handle in handles[1:]:
        browser.switch_to.window(handle)
        browser.close()
    browser.switch_to.window(browser.window_handles[0])
    browser.get("about:blank")


def wait_until(condition, what: str, timeout_s: float = WAIT_S, every_s: float = 0.25):
    """``condition()``'s first truthy value; a TimeoutError naming ``what`` when none came in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
