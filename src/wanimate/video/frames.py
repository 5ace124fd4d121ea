"""Write frames as a numbered PNG sequence, each file complete or absent.

Used by ``wanimate generate --save-frames DIR`` to keep every output frame
losslessly beside the video. Each PNG is written to a hidden temporary name and
renamed, so an interrupted run leaves only whole images and rerunning overwrites.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from wanimate.paths import temp_sibling

PATTERN = "{:06d}.png"


class FrameSequenceWriter:
    """Numbered PNGs (``000000.png``, ``000001.png``, ...) in a folder, from ``start``."""

    def __init__(self, directory: str | Path, start: int = 0, compress_level: int = 1) -> None:
        self.directory = Path(directory)
        self._created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.start = self.next_index = start
        self.compress_level = compress_level

    def write(self, frame: np.ndarray) -> Path:
        """Save one RGB (H, W, 3) or grayscale (H, W) uint8 frame; returns its path."""
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
            raise ValueError(f"expected a uint8 (H, W[, 3]) frame, got {frame.dtype} {frame.shape}")
        target = self.directory / PATTERN.format(self.next_index)
        tmp = temp_sibling(target)
        try:
            Image.fromarray(np.ascontiguousarray(frame)).save(tmp, format="PNG", compress_level=self.compress_level)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.next_index += 1
        return target

    def discard(self) -> None:
        """Delete the frames this writer wrote (and its folder, if it made it and it is empty again)."""
        for index in range(self.start, self.next_index):
            (self.directory / PATTERN.format(index)).unlink(missing_ok=True)
        if self._created:
            with contextlib.suppress(OSError):
                self.directory.rmdir()


def save_frames(frames: Iterable[np.ndarray], directory: str | Path, start: int = 0) -> int:
    """Write every frame of ``frames`` as a PNG in ``directory``; returns how many were written."""
    writer = FrameSequenceWriter(directory, start=start)
    for frame in frames:
        writer.write(frame)
    return writer.next_index - start
