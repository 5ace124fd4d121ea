"""The browser page in a real headless Chromium (Debian's package, driven by Playwright):
upload, run a preview job, watch it finish and the result video play."""

from __future__ import annotations

import os
from pathlib import Path

from browser import PLAYING, open_page, require_chromium

from wanimate.bench.serve import short_clip
from wanimate.serve.config import ServeConfig
from wanimate.serve.server import BackgroundServer

require_chromium()


def test_upload_run_and_play_in_chromium(astronaut_image, carphone_video, tmp_path):
    clip = short_clip(carphone_video, tmp_path / "drive.mp4", 24)
    config = ServeConfig(data_dir=tmp_path / "data")
    with BackgroundServer(config) as server, open_page(server.url, height=1000) as (page, errors):
        page.set_input_files("#image", str(astronaut_image))
        page.set_input_files("#video", str(clip))
        page.select_option("#backend", "preview")
        page.select_option("#area", "128x128")
        page.click("#submit")

        page.wait_for_function(PLAYING, timeout=170_000, polling=200)
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
