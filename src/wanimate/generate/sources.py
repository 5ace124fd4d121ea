"""Per-segment access to the material videos without loading them whole.

Segments move forward through the video, so each material is decoded once, in
order, keeping only the frames the current and next segments can still need. The
ping-pong padding at the tail can look back; a request below the cache reopens
the stream (rare, and only costs decoding time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from wanimate.errors import WanimateError
from wanimate.materials.layout import MASK_THRESHOLD
from wanimate.video import iter_frames

FrameOpener = Callable[[], Iterator[np.ndarray]]


class FrameWindow:
    """Random access by source index over a forward-only decoder, with a sliding cache.

    ``source`` is a video file, or a function that starts the frames from the beginning (an image
    sequence); ``label`` names it in errors.
    """

    def __init__(
        self, source: Path | FrameOpener, num_frames: int, *, binary: bool = False, label: str | None = None
    ) -> None:
        self._open: FrameOpener = (lambda: iter_frames(source)) if isinstance(source, Path) else source
        self.label = label or (source.name if isinstance(source, Path) else "frames")
        self.num_frames = num_frames
        self.binary = binary
        self._cache: dict[int, np.ndarray] = {}
        self._decoder: Iterator[np.ndarray] | None = None
        self._next = 0

    def _restart(self) -> None:
        self._decoder = self._open()
        self._next = 0
        self._cache.clear()

    def _decode_through(self, index: int) -> None:
        if self._decoder is None:
            self._restart()
        assert self._decoder is not None
        while self._next <= index:
            try:
                frame = next(self._decoder)
            except StopIteration:
                raise WanimateError(
                    f"{self.label} ended after {self._next} frames but {self.num_frames} were expected"
                ) from None
            if self.binary:
                frame = np.where(frame >= MASK_THRESHOLD, 255, 0).astype(np.uint8)
            self._cache[self._next] = frame
            self._next += 1

    def frames(self, indices: list[int]) -> list[np.ndarray]:
        """Frames at ``indices``; afterwards only frames at or after the smallest index stay cached."""
        lowest = min(indices)
        if lowest < self._next and lowest not in self._cache:
            self._restart()
        self._decode_through(max(indices))
        out = [self._cache[i] for i in indices]
        for stale in [i for i in self._cache if i < lowest]:
            del self._cache[stale]
        return out
