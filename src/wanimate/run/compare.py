"""The comparison video: driving | skeleton | result, for people who would rather look than read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wanimate.materials import Materials
from wanimate.preprocess.strip import compose_strip
from wanimate.video import VideoWriter, iter_frames

ROW_HEIGHT = 360


def write_compare(video: Path, materials: Materials, result: Path, output: Path, still: Path | None = None) -> Path:
    """Stream the three videos side by side at the materials' fps; ``still`` saves the middle frame as a PNG."""
    driving = iter_frames(video, fps=materials.meta.fps)
    skeleton = iter_frames(materials.path("pose"))
    rendered = iter_frames(result)
    middle = materials.num_frames // 2
    with VideoWriter(output, materials.meta.fps) as writer:
        for index, (drive, pose, out) in enumerate(zip(driving, skeleton, rendered, strict=False)):
            row = compose_strip([("driving", drive), ("skeleton", pose), ("result", out)], height=ROW_HEIGHT)
            writer.write(row)
            if still is not None and index == middle:
                Image.fromarray(np.ascontiguousarray(row)).save(still)
    return output
