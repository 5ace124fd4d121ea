"""The page's cast picker in a real headless Chromium (as tests/test_serve_ui.py): choose a video,
see its people sheet with one character slot per id, give two of them an image, run the cast."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from browser import PLAYING, open_page, require_chromium

from wanimate import scenes
from wanimate.serve.config import ServeConfig
from wanimate.serve.server import BackgroundServer
from wanimate.serve.store import JobStore

require_chromium()


def test_cast_picker_lists_the_people_and_runs_a_cast(astronaut_image, tmp_path):
    clip = scenes.write_scene(dataclasses.replace(scenes.wide_shot(), frames=6), tmp_path / "crowd.mp4")
    config = ServeConfig(data_dir=tmp_path / "data")
    with BackgroundServer(config) as server, open_page(server.url, height=1400) as (page, errors):
        assert page.is_hidden("#cast-picker") and page.is_visible("#image-drop")
        page.check("#cast-on")
        assert page.is_visible("#cast-picker") and page.is_hidden("#image-drop")
        page.set_input_files("#video", str(clip))
        page.wait_for_selector("#cast-sheet-fig", state="visible", timeout=150_000)
        assert page.evaluate("document.querySelector('#cast-sheet').naturalWidth") == 960  # the people sheet
        slots = page.eval_on_selector_all("#cast-slots .slot", "els => els.map((e) => Number(e.dataset.person))")
        assert slots == [0, 1, 2, 3]  # one slot per id of the sheet
        assert page.text_content("#cast-status").startswith("4 people in the video (768x576, 6 frames)")
        page.click("#submit")  # nobody cast yet: refused on the page, nothing sent
        assert "at least one person" in page.text_content("#form-error")
        page.set_input_files("#cast-slot-3", str(astronaut_image))
        page.set_input_files("#cast-slot-1", str(astronaut_image))
        page.select_option("#backend", "preview")
        page.select_option("#area", "128x128")
        page.click("#submit")
        page.wait_for_function(PLAYING, timeout=170_000, polling=200)
        assert page.text_content("#job-state") == "done"
        page.wait_for_selector("#people-fig", state="visible", timeout=30_000)  # the job's own sheet
        assert page.text_content("#people-caption").endswith("the cast plays ids 1, 3")
        (job,) = JobStore(config.database).page(limit=5, offset=0)[0]
        assert job.options["cast"] == [1, 3] and job.options["backend"] == "preview"
        assert not errors, errors
        shot = Path(os.environ.get("WANIMATE_SCREENSHOT", tmp_path / "cast-ui.png"))
        page.screenshot(path=str(shot), full_page=True)
