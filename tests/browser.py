"""Headless Chromium (Debian's package, driven by Playwright) for the page's tests."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
# The result video has decoded a frame and is playing.
PLAYING = (
    "(() => { const v = document.querySelector('#result');"
    " return v.readyState >= 2 && v.currentTime > 0 && !v.paused; })()"
)


def require_chromium() -> None:
    """Skip the module without Chromium, unless CI demands the browser (WANIMATE_REQUIRE_BROWSER=1)."""
    if not Path(CHROMIUM).is_file() and os.environ.get("WANIMATE_REQUIRE_BROWSER") != "1":
        pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


@contextlib.contextmanager
def open_page(url: str, height: int) -> Iterator[tuple[Any, list[str]]]:
    """The server's page, loaded and its worker up; with the list of page errors seen meanwhile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.wait_for_function("document.querySelector('#health').textContent.includes('worker')")
            yield page, errors
        finally:
            browser.close()
