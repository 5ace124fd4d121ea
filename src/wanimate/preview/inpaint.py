"""Filling the hole a person leaves: a push-pull fill, and a temporal background for static cameras.

Push-pull (average the known pixels down a pyramid, then fill each level's gaps from the
coarser one on the way up) costs a few milliseconds per 480p frame, which keeps replace
mode inside the frame budget; ``cv2.inpaint`` would take tens of milliseconds to seconds
on holes the size of a person. What it gives up is texture, which is fine for a plate the
character mostly covers.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

STATIC_CAMERA_MAX_DIFF = 12.0  # mean |frame - median| in grey levels over unmasked pixels


def push_pull_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` (bool, True = unknown) smoothly from the surrounding known pixels."""
    if not hole.any():
        return image
    known = (~hole).astype(np.float32)
    colour = image.astype(np.float32) * known[..., None]
    levels = [(colour, known)]
    while min(levels[-1][1].shape) > 2:
        c, w = levels[-1]
        size = ((c.shape[1] + 1) // 2, (c.shape[0] + 1) // 2)
        levels.append(
            (cv2.resize(c, size, interpolation=cv2.INTER_AREA), cv2.resize(w, size, interpolation=cv2.INTER_AREA))
        )
    c, w = levels[-1]
    filled = c / np.maximum(w, 1e-6)[..., None]
    for c, w in reversed(levels[:-1]):
        up = cv2.resize(filled, (c.shape[1], c.shape[0]), interpolation=cv2.INTER_LINEAR)
        conf = np.clip(w * 2.0, 0.0, 1.0)[..., None]
        filled = conf * (c / np.maximum(w, 1e-6)[..., None]) + (1.0 - conf) * up
    out = image.copy()
    out[hole] = np.clip(filled[hole] + 0.5, 0, 255).astype(np.uint8)
    return out


def reference_plate(reference: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The character's own image with the character removed (animate mode's background).

    The hole is grown past the soft matte edge so no outline of the original pose shows.
    """
    grow = max(3, round(0.012 * max(reference.shape[:2]))) | 1
    hole = cv2.dilate((alpha > 0.05).astype(np.uint8), np.ones((grow, grow), np.uint8)) > 0
    return push_pull_fill(reference, hole)


class TemporalBackground:
    """A per-pixel median over sampled frames, using each pixel only where it was not masked.

    Built from an iterator of (frame, hole) pairs. ``static`` says whether the camera held
    still: the unmasked pixels of the samples must agree with the median. For a moving
    camera the median is meaningless and every frame is filled on its own.
    """

    def __init__(self, samples: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        frames, holes = [], []
        for frame, hole in samples:
            frames.append(frame)
            holes.append(hole)
        stack = np.stack(frames).astype(np.uint16)
        stack[np.stack(holes)] = 256  # sorts after every real value
        n, h, w, c = stack.shape
        flat = np.sort(stack.reshape(n, -1).T, axis=1)
        seen = (flat < 256).sum(axis=1)
        median = np.take_along_axis(flat, np.maximum((seen - 1) // 2, 0)[:, None], axis=1)[:, 0]
        self.median = np.minimum(median, 255).astype(np.uint8).reshape(h, w, c)
        self.observed = (seen > 0).reshape(h, w, c)[..., 0]
        diffs = [
            float(np.abs(f.astype(np.int16) - self.median).mean(axis=2)[~m & self.observed].mean())
            for f, m in zip(frames, holes, strict=True)
            if (~m & self.observed).any()
        ]
        self.static = bool(diffs) and float(np.median(diffs)) < STATIC_CAMERA_MAX_DIFF

    def fill(self, frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Replace the hole with the median where it was ever seen, push-pull elsewhere."""
        if not self.static:
            return push_pull_fill(frame, hole)
        out = frame.copy()
        from_median = hole & self.observed
        out[from_median] = self.median[from_median]
        return push_pull_fill(out, hole & ~self.observed)
