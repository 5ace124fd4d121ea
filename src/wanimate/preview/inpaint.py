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
    """Fill ``hole`` (bool, True = unknown) smoothly from the surrounding known pixels.

    Only the hole's bounding box, grown by half its size, is processed: the fill draws on
    nearby pixels anyway, and a performer covers a fraction of the frame.
    """
    ys, xs = np.nonzero(hole)
    if len(ys) == 0:
        return image
    h, w = hole.shape
    gy, gx = max(16, (ys.max() - ys.min()) // 2), max(16, (xs.max() - xs.min()) // 2)
    y0, y1 = max(0, ys.min() - gy), min(h, ys.max() + gy + 1)
    x0, x1 = max(0, xs.min() - gx), min(w, xs.max() + gx + 1)
    out = image.copy()
    out[y0:y1, x0:x1] = _push_pull(image[y0:y1, x0:x1], hole[y0:y1, x0:x1])
    return out


def _push_pull(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    known = (~hole).astype(np.float32)
    if not known.any():
        return image
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
    np.copyto(out, np.clip(filled + 0.5, 0, 255).astype(np.uint8), where=hole[..., None])
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
    camera the median is meaningless and every frame is filled on its own. ``plate`` is the
    median with the never-seen pixels filled in.
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
        # Pixels the performer never uncovered get a fill from the median around them, once:
        # per frame, a static camera then costs one masked copy.
        self.plate = push_pull_fill(self.median, ~self.observed) if self.static else self.median

    def fill(self, frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Replace the hole with the static background, or fill it from this frame alone."""
        if not self.static:
            return push_pull_fill(frame, hole)
        out = frame.copy()
        cv2.copyTo(self.plate, hole.view(np.uint8), out)
        return out
