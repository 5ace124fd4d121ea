"""The browser page in a real headless Chromium (Debian's package, driven by Playwright):
upload, run a preview job, watch it finish and the result video play."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wanimate.bench.serve import short_clip
from wanimate.serve.config import ServeConfig
from wanimate.serve.server import BackgroundServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
if not Path(CHROMIUM).is_file() and os.environ.get("WANIMATE_REQUIRE_BROWSER") != "1":
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


def test_upload_run_and_play_in_chromium(astronaut_image, carphone_video, tmp_path):
    from playwright.sync_api import sync_playwright

    clip = short_clip(carphone_video, tmp_path / "drive.mp4", 24)
    config = ServeConfig(data_dir=tmp_path / "data")
    with BackgroundServer(config) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url)
            page.wait_for_function("document.querySelector('#health').textContent.includes('worker')")
            page.set_input_files("#image", str(astronaut_image))
            page.set_input_files("#video", str(clip))
            page.select_option("#backend", "preview")
            page.select_option("#area", "128x128")
            page.click("#submit")

            page.wait_for_function(
                "(() => { const v = document.querySelector('#result');"
                " return v.readyState >= 2 && v.currentTime > 0 && !v.paused; })()",
                timeout=170_000,
                polling=200,
            )
            assert page.text_content("#job-state") == "done"
            page.wait_for_selector("#compare-fig", state="visible", timeout=30_000)
            page.wait_for_selector("#materials-fig", state="visible", timeout=30_000)
            page.wait_for_selector("#people-fig", state="visible", timeout=30_000)
            assert page.evaluate("document.querySelector('#people').naturalWidth") == 960  # the people sheet
            size = page.evaluate(
                "(() => { const v = document.querySelector('#result'); return [v.videoWidth, v.videoHeight]; })()"
            )
            assert size == [128, 128]
            started = page.evaluate("document.querySelector('#result').currentTime")
            page.wait_for_timeout(600)
            assert page.evaluate("document.querySelector('#result').currentTime") != started  # it plays
            assert page.get_attribute("#result-download", "href").startswith("blob:")
            assert page.locator("#history tbody tr").count() == 1
            assert "done" in page.text_content("#history tbody tr")
            assert not errors, errors
            shot = Path(os.environ.get("WANIMATE_SCREENSHOT", tmp_path / "ui.png"))
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
