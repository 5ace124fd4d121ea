"""The README's two commands are what a fresh machine and CI run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_readme_opens_with_run_and_test_commands():
    first, second = _bash_blocks()[:2]
    assert "wanimate run" in first and "example:" in first
    assert "pytest" in second
    for command in (first, second):
        assert "pip install torch==2.13.0" in command  # the CPU wheel, never a CUDA build
        assert "torchvision" not in command


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "blocks[1]" in ci and 'eval "$test_command"' in ci


def test_readme_picture_exists_and_is_small():
    match = re.search(r"!\[[^\]]*\]\(([^)]+\.png)\)", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert match
    picture = ROOT / match.group(1)
    assert picture.is_file() and picture.stat().st_size < 300_000
