"""The character's pose in each output frame, re-estimated with the preprocessing backend."""

from __future__ import annotations

import numpy as np

from wanimate.preprocess import keypoints as K
from wanimate.preprocess.pose import make_backend


def _body_distance(a: np.ndarray, b: np.ndarray) -> float:
    both = (a[K.BODY, 2] >= 0.3) & (b[K.BODY, 2] >= 0.3)
    if not both.any():
        return float("inf")
    return float(np.linalg.norm(a[K.BODY][both, :2] - b[K.BODY][both, :2], axis=1).mean())


class CharacterPoses:
    """Runs the backend frame by frame and picks the character among the people found.

    The character is the person nearest the skeleton the model was given (another person in a
    replaced background must not count), else the one nearest the last pick, else the largest.
    """

    def __init__(self, backend: str = "mediapipe") -> None:
        self._backend = make_backend(backend, video=True)
        self._last: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, expected: np.ndarray | None = None) -> np.ndarray | None:
        people = self._backend.detect(frame)
        if not people:
            return None
        anchor = expected if expected is not None else self._last
        if anchor is not None:
            chosen = min(people, key=lambda p: _body_distance(p.keypoints, anchor))
        else:
            chosen = max(people, key=lambda p: float(np.prod(p.bbox[2:] - p.bbox[:2])))
        self._last = chosen.keypoints
        return chosen.keypoints

    def close(self) -> None:
        self._backend.close()


def still_pose(image: np.ndarray, backend: str = "mediapipe") -> np.ndarray | None:
    """The most confident person in one unrelated image (the character image)."""
    model = make_backend(backend, video=False)
    try:
        people = model.detect(image)
    finally:
        model.close()
    return max(people, key=lambda p: p.score).keypoints if people else None
