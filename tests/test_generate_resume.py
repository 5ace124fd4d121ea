"""A killed run resumes from its last finished segment and ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wanimate.generate import GenerateSettings, generate
from wanimate.generate.engine import ProgressEvent
from wanimate.materials.synthetic import write_materials
from wanimate.models.loading import load_model

ARGS = [
    "--weights",
    "random:tiny",
    "--segment-frames",
    "9",
    "--dtype",
    "fp32",
    "--device",
    "cpu",
    "--prompt",
    "w1 w2",
    "--seed",
    "3",
]


def _frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "wanimate", "generate", *args]


def test_kill_and_resume_is_bit_identical(tmp_path):
    materials = write_materials(tmp_path / "m", num_frames=41)  # 5 segments of 9 frames
    steps = ["--steps", "12"]
    full = subprocess.run(
        _cli(str(materials), "-o", str(tmp_path / "full.mp4"), "--save-frames", str(tmp_path / "full"), *ARGS, *steps),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert full.returncode == 0, full.stderr

    out = tmp_path / "resumed.mp4"
    segments = tmp_path / "resumed.work" / "segments"
    proc = subprocess.Popen(
        _cli(str(materials), "-o", str(out), "--save-frames", str(tmp_path / "resumed"), *ARGS, *steps),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if segments.is_dir() and len(list(segments.glob("*.safetensors"))) >= 1:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed; give it more steps"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    finished = sorted(segments.glob("*.safetensors"))
    assert 1 <= len(finished) < 5
    stamps = {p.name: p.stat().st_mtime_ns for p in finished}

    resumed = subprocess.run(
        _cli(str(materials), "-o", str(out), "--save-frames", str(tmp_path / "resumed"), "--keep-work", *ARGS, *steps),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    for name, stamp in stamps.items():  # finished segments were not recomputed
        assert (segments / name).stat().st_mtime_ns == stamp
    assert np.array_equal(_frames(tmp_path / "full"), _frames(tmp_path / "resumed"))


@pytest.fixture(scope="module")
def tiny_model():
    return load_model("random:tiny", device="cpu")


def _segments_started(materials: Path, output: Path, model, settings: GenerateSettings) -> list[int]:
    started: list[int] = []

    def record(event: ProgressEvent) -> None:
        if event.stage == "segment":
            started.append(event.segment)

    generate(materials, output, settings=settings, model=model, keep_work=True, overwrite=True, progress=record)
    return started


def test_changed_setting_invalidates_saved_segments(tmp_path, tiny_model):
    materials = write_materials(tmp_path / "m", num_frames=17)
    settings = GenerateSettings(steps=2, segment_frames=9, dtype="fp32", device="cpu", prompt="w1")
    out = tmp_path / "o.mp4"
    assert _segments_started(materials, out, tiny_model, settings) == [0, 1]
    assert _segments_started(materials, out, tiny_model, settings) == []  # all reused
    changed = GenerateSettings(steps=2, segment_frames=9, dtype="fp32", device="cpu", prompt="w1", seed=1)
    assert _segments_started(materials, out, tiny_model, changed) == [0, 1]
    # Changed materials invalidate too.
    write_materials(materials, num_frames=17, seed=5)
    assert _segments_started(materials, out, tiny_model, changed) == [0, 1]


def test_work_folder_removed_after_success_by_default(tmp_path, tiny_model):
    materials = write_materials(tmp_path / "m", num_frames=9)
    settings = GenerateSettings(steps=1, segment_frames=9, dtype="fp32", device="cpu", prompt="w1")
    generate(materials, tmp_path / "o.mp4", settings=settings, model=tiny_model)
    assert (tmp_path / "o.mp4").is_file()
    assert not (tmp_path / "o.work").exists()
