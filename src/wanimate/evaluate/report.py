"""Writing the report files: JSON and HTML, each atomically, never over a file we did not write."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from wanimate.errors import WanimateError
from wanimate.paths import temp_sibling

HTML_MARK = "<!-- wanimate-eval -->"


def default_report_path(output: Path, several: bool = False) -> Path:
    return output.with_name(f"{output.stem}.{'compare' if several else 'eval'}.json")


def _ours(path: Path) -> bool:
    """Whether an existing file is an earlier wanimate report (so replacing it loses nothing of the user's)."""
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text()).get("format", "").startswith("wanimate-eval")
        return path.read_text(errors="replace").startswith(HTML_MARK)
    except (OSError, ValueError, AttributeError):
        return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def check_writable(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            raise WanimateError(f"{path} is a folder; give a file name for the report")
        if path.exists() and not _ours(path):
            raise WanimateError(f"{path} exists and is not a wanimate report; choose another --report path")


def atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def report_json(report: dict) -> str:
    return json.dumps(_jsonable(report), indent=1, ensure_ascii=False) + "\n"


def write_reports(report: dict, json_path: Path, html: str) -> tuple[Path, Path]:
    """The JSON report at ``json_path`` and the page beside it (``.html``)."""
    html_path = json_path.with_suffix(".html")
    check_writable(json_path, html_path)
    atomic_write(json_path, report_json(report))
    atomic_write(html_path, html)
    return json_path, html_path
