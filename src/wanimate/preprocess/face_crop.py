"""Face boxes and 512×512 face crops for the model's motion encoder.

The box follows the official rule (bounding box of the 68 face landmarks, area ×1.3,
width grown evenly, height grown three parts up to one part down to take the forehead)
but, unlike the official code, it is smoothed over time and the crop keeps the face's
aspect ratio: the motion encoder reads expression from the crop, so per-frame box
jitter and stretching both show up as fake expression changes.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from wanimate.errors import WanimateError
from wanimate.preprocess.keypoints import FACE

AREA_SCALE = 1.3
MIN_FACE_POINTS = 10


def face_box(
    kp: np.ndarray, *, threshold: float = 0.5, min_points: int = MIN_FACE_POINTS, scale: float = AREA_SCALE
) -> np.ndarray | None:
    """The official-ratio box ``(x0, y0, x1, y1)`` of one pose's face, or None without a usable face.

    Only landmarks scoring at least ``threshold`` count (the official code used all 68
    whatever their score, so a half-lost face could produce a huge box).
    """
    points = kp[FACE]
    points = points[(points[:, 2] >= threshold) & np.isfinite(points[:, :2]).all(axis=1)]
    if len(points) < min_points:
        return None
    (x0, y0), (x1, y1) = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    width, height = x1 - x0, y1 - y0
    if width < 1 or height < 1:
        return None
    grow = math.sqrt(scale)  # area × scale with the aspect kept
    dw = (width * grow - width) / 2
    dh = (height * grow - height) / 4
    return np.array([x0 - dw, y0 - 3 * dh, x1 + dw, y1 + dh], np.float64)


def face_boxes(
    keypoints: np.ndarray,
    frame_size: tuple[int, int],
    *,
    smoothing: float = 2.0,
    threshold: float = 0.5,
) -> np.ndarray:
    """``(T, 4)`` face boxes for a pose sequence, smoothed over time.

    Frames without a face take the nearest frame's box (the earlier one on a tie). The
    box centre is smoothed with a zero-phase Gaussian of ``smoothing`` frames (sigma) and
    the box size with twice that, since a face's size changes more slowly than its
    position; 0 turns smoothing off. Boxes are not clipped to the frame (``crop_face``
    pads what lies outside), but their centre is kept inside ``frame_size`` = (H, W).
    """
    raw = [face_box(kp, threshold=threshold) for kp in keypoints]
    found = np.array([i for i, box in enumerate(raw) if box is not None])
    if found.size == 0:
        raise WanimateError(
            "No face was found in any driving frame: the face video needs a visible face "
            "(use a driving video where the performer's face is seen)."
        )
    nearest = _nearest(found, len(raw))
    boxes = np.stack([raw[i] for i in nearest])
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = boxes[:, 2:] - boxes[:, :2]
    centre = _gaussian_smooth(centre, smoothing)
    size = _gaussian_smooth(size, 2 * smoothing)
    height, width = frame_size
    centre = np.clip(centre, 0, [width - 1, height - 1])
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def _nearest(found: np.ndarray, count: int) -> np.ndarray:
    """For each of ``count`` frames, the nearest index in sorted ``found`` (the earlier on a tie), in O(T log F)."""
    frames = np.arange(count)
    after = np.clip(np.searchsorted(found, frames), 0, len(found) - 1)
    before = np.clip(after - 1, 0, len(found) - 1)
    take_before = np.abs(frames - found[before]) <= np.abs(found[after] - frames)
    return np.where(take_before, found[before], found[after])


def _gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth each column along time without lag; the ends are padded with their edge value."""
    if sigma <= 0 or len(values) < 2:
        return values
    radius = max(math.ceil(3 * sigma), 1)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(values, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, c], taps, mode="valid") for c in range(values.shape[1])], axis=1)


def crop_face(frame: np.ndarray, box: np.ndarray, size: int = 512) -> np.ndarray:
    """``(size, size, 3)`` crop of ``box`` from a full-resolution frame, never stretched.

    The box is grown to a square around its centre along its shorter side (more real
    context, no bars inside the frame); any part of that square outside the frame is
    black. Downscaling uses area averaging, upscaling bilinear.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(round(max(x1 - x0, y1 - y0)), 1)
    left = round((x0 + x1) / 2 - side / 2)
    top = round((y0 + y1) / 2 - side / 2)
    height, width = frame.shape[:2]
    crop = np.zeros((side, side, frame.shape[2]), frame.dtype)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + side, width), min(top + side, height)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = frame[sy0:sy1, sx0:sx1]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)
