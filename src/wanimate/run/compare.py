"""The comparison video: driving | skeleton | result, for people who would rather look than read."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from wanimate.materials import Materials
from wanimate.paths import temp_sibling
from wanimate.preprocess.preview_video import compose_preview
from wanimate.video import VideoWriter, audio_to_carry, iter_frames

ROW_HEIGHT = 360


def write_compare(
    video: Path,
    materials: Materials,
    result: Path,
    output: Path,
    still: Path | None = None,
    *,
    audio: bool = True,
    on_frame: Callable[[int, int], None] | None = None,
) -> Path:
    """Stream the three videos side by side at the materials' fps; ``still`` saves the middle frame as a PNG.

    Like the result, the comparison carries the driving video's audio unless ``audio`` is off.
    """
    driving = iter_frames(video, fps=materials.meta.fps)
    skeleton = iter_frames(materials.path("pose"))
    rendered = iter_frames(result)
    middle = materials.num_frames // 2
    source_audio = audio_to_carry(materials.meta.audio) if audio else None
    picked: np.ndarray | None = None
    with VideoWriter(output, materials.meta.fps, audio=source_audio) as writer:
        for index, (drive, pose, out) in enumerate(zip(driving, skeleton, rendered, strict=False)):
            row = compose_preview([("driving", drive), ("skeleton", pose), ("result", out)], height=ROW_HEIGHT)
            writer.write(row)
            if index == middle:
                picked = row
            if on_frame is not None:
                on_frame(index + 1, materials.num_frames)
    if still is not None and picked is not None:  # written after the video, so a failed video leaves neither
        _save_png(picked, still)
    return output


def _save_png(row: np.ndarray, path: Path) -> None:
    tmp = temp_sibling(path)
    try:
        Image.fromarray(np.ascontiguousarray(row)).save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
