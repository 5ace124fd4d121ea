"""What every pose backend returns, and the small geometry helpers they share.

Backends see one RGB frame at a time and report *every* person they find; choosing and
following one performer is the tracker's job (:mod:`wanimate.preprocess.tracking`), so a
backend never has to guess who matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from wanimate.preprocess.keypoints import NUM_KEYPOINTS


@dataclass(eq=False)  # holds arrays: identity is the only meaningful equality
class PersonPose:
    """One person in one frame.

    ``keypoints`` is ``(133, 3)`` float32 (x, y, score) in pixels of the frame that was given;
    a score of 0 means the point is missing. ``bbox`` is x0, y0, x1, y1 in pixels and ``score``
    is the backend's confidence that this is a person at all. ``appearance`` (see
    :mod:`wanimate.preprocess.appearance`) is filled in by backends that see the person's
    silhouette, and lets the tracker re-identify them after an exit or an occlusion.
    ``track`` is set by backends that follow each person from frame to frame: the same number
    in consecutive frames is the same person as far as the backend could tell.
    """

    keypoints: np.ndarray
    bbox: np.ndarray
    score: float
    appearance: np.ndarray | None = None
    track: int | None = None  # the backend's own follow number, when it follows people frame to frame

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, np.float32).reshape(NUM_KEYPOINTS, 3)
        self.bbox = np.asarray(self.bbox, np.float32).reshape(4)
        self.score = float(self.score)


class PoseBackend(Protocol):
    """A whole-body pose estimator: RGB uint8 ``(H, W, 3)`` frame in, all people found out."""

    name: str

    def detect(self, frame: np.ndarray) -> list[PersonPose]: ...

    def close(self) -> None: ...


def keypoint_box(keypoints: np.ndarray, min_score: float = 0.3) -> np.ndarray | None:
    """Tight x0, y0, x1, y1 around the confident points, or None when there are none."""
    ok = keypoints[:, 2] >= min_score
    if not ok.any():
        return None
    xy = keypoints[ok, :2]
    return np.array([*xy.min(0), *xy.max(0)], np.float32)


def drop_outside(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """Zero the score of points outside the frame.

    Landmark models extrapolate limbs beyond the image border; COCO never labels such points
    and the official skeleton drawing rejects them too, so they count as missing.
    """
    out = keypoints.copy()
    x, y = out[:, 0], out[:, 1]
    outside = (x < 0) | (y < 0) | (x > width - 1) | (y > height - 1)
    out[outside, 2] = 0.0
    out[out[:, 2] <= 0] = 0.0
    return out


def check_frame(frame: np.ndarray) -> np.ndarray:
    """Backends take RGB uint8 ``(H, W, 3)``; anything else is a caller bug worth a clear message."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
    return frame
