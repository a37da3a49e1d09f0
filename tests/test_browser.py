"""The SLA report and the live board in a real headless browser (Debian's chromium + selenium).

Each page must load without a console error, show its figures, and is saved as a screenshot
(in $TIERSYNC_SCREENSHOT_DIR when set, else the test's folder). .ci/run installs chromium and
chromium-driver; under CI these tests never skip.
"""
from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif((not CHROMIUM or not DRIVER) and not os.environ.get("CI"),
                                 reason="chromium and chromium-driver are not installed "
                                        "(.ci/run installs them)")]


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,2000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _shot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TIERSYNC_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser, url: str, shot: Path) -> str:
    browser.get_log("browser")  # forget what an earlier page logged
    browser.get(url)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(max(height + 40, 800), 6000))
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    return browser.find_element("tag name", "body").text


def test_the_report_renders_without_errors(browser, tmp_path):
    from core.report_render import render
    from core.sla_report import build_report, parse_period
    from tests.test_sla_report import NOW, fixture_store  # the hand-computed fixture
    store = fixture_store(tmp_path / "store.db")
    with store.transaction() as tx:
        data = build_report(tx, parse_period("2026-03-02", "2026-03-08"), NOW)
    store.close()
    page = tmp_path / "report.html"
    render(data, "html", page)
    html = page.read_text()
    assert "<script" not in html and "src=\"http" not in html and "href=\"http" not in html
    text = _open(browser, page.as_uri(), _shot_dir(tmp_path) / "report.png")
    assert "SLA compliance report" in text and "waiting for engineering" in text
    assert "50.0 %" in text and "66.7 % (2/3)" in text  # acknowledgement: overall, Marketplace
    assert browser.execute_script("return document.querySelectorAll('svg').length") == 5
    pdf = base64.b64decode(browser.print_page())  # printable: the browser's own print to PDF
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2
    (_shot_dir(tmp_path) / "report.pdf").write_bytes(pdf)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_daemon_serves_the_board(browser, tmp_path):
    from harness.demo import STEPS, Scenario
    from harness.sandbox import Sandbox
    with Sandbox(tmp_path) as box:
        scenario = Scenario(box)
        for step in STEPS[:4]:  # escalated, mirrored, actively working: SLA clocks running
            step.act(scenario)
            box.cycle()
        box.stop_store()
        port = _free_port()
        tiersync = Path(sys.executable).with_name("tiersync")
        daemon = subprocess.Popen([str(tiersync), "daemon", "--interval", "1", "--listen",
                                   f"127.0.0.1:{port}", "--config", str(box.config_path)],
                                  env={**os.environ, **box.env}, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}/board"
            _wait_for(url, daemon)
            assert requests.post(url, timeout=5).status_code == 405
            assert requests.get(url.replace("/board", "/nothing"), timeout=5).status_code == 404
            text = _open(browser, url + "?refresh=30", _shot_dir(tmp_path) / "board.png")
            refresh = browser.find_element("css selector", "meta[http-equiv=refresh]")
            assert refresh.get_attribute("content") == "30"
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
    assert "Open escalations" in text and "1 open" in text
    assert "acknowledgement" in text and "business h left" in text


def _wait_for(url: str, daemon: subprocess.Popen) -> None:
    for _ in range(100):
        if daemon.poll() is not None:
            raise AssertionError(f"the daemon stopped: {daemon.stderr.read()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")
