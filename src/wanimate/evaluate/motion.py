"""Motion fidelity: does the character in the output strike the poses it was given?

The output's pose is re-estimated with the preprocessing backend and compared, point by
point, with the skeleton the model was given (in output pixels). Errors are normalised by
the longer side of the given skeleton's body box, the usual PCK convention for whole-body
keypoints, so one threshold reads the same at any resolution; PCK@a is the share of given
points that the output puts within ``a`` of that size. A given point that the estimator does
not find in the output counts as a miss for PCK and is left out of the mean error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wanimate.preprocess import keypoints as K

PARTS = {"body": K.BODY, "face": K.FACE, "hands": slice(K.LEFT_HAND.start, K.RIGHT_HAND.stop)}
PCK_THRESHOLDS = (0.05, 0.1)
# The skeleton drawing skips points below this score, so the model never saw them.
GIVEN_SCORE = 0.5
FOUND_SCORE = 0.3
MIN_BODY_POINTS = 4


def body_size(kp: np.ndarray, min_score: float = GIVEN_SCORE) -> float | None:
    """Longer side of the box around the confident body points; None with fewer than two."""
    body = kp[K.BODY]
    pts = body[body[:, 2] >= min_score, :2]
    if len(pts) < 2:
        return None
    side = float(np.ptp(pts, axis=0).max())
    return side if side > 0 else None


def person_found(kp: np.ndarray) -> bool:
    return int((kp[K.BODY, 2] >= FOUND_SCORE).sum()) >= MIN_BODY_POINTS


def normalised_errors(found: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per point ``(133,)`` error in body sizes (NaN where not comparable) and the given-visible mask."""
    size = body_size(given)
    if size is None:
        return None
    visible = given[:, 2] >= GIVEN_SCORE
    seen = visible & (found[:, 2] >= FOUND_SCORE)
    error = np.full(len(given), np.nan)
    error[seen] = np.linalg.norm(found[seen, :2] - given[seen, :2], axis=1) / size
    return error, visible


@dataclass
class MotionFidelity:
    """Accumulates one frame at a time; :meth:`result` gives the report section."""

    per_frame: list[float | None] = field(default_factory=list)
    not_found: list[int] = field(default_factory=list)
    _visible: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PARTS, 0))
    _correct: dict[tuple[str, float], int] = field(default_factory=dict)
    _errors: dict[str, list[np.ndarray]] = field(default_factory=lambda: {p: [] for p in PARTS})

    def add(self, index: int, found: np.ndarray | None, given: np.ndarray) -> None:
        if found is None or not person_found(found):
            self.not_found.append(index)
            found = K.empty_pose()
        measured = normalised_errors(found, given)
        if measured is None:  # the model was given no body in this frame: nothing to follow
            self.per_frame.append(None)
            return
        error, visible = measured
        for part, sl in PARTS.items():
            part_error, part_visible = error[sl], visible[sl]
            self._visible[part] += int(part_visible.sum())
            self._errors[part].append(part_error[~np.isnan(part_error)])
            for a in PCK_THRESHOLDS:
                hits = int((part_error[part_visible] < a).sum())  # NaN (missed) compares False
                self._correct[(part, a)] = self._correct.get((part, a), 0) + hits
        body = error[PARTS["body"]]
        self.per_frame.append(float(np.nanmean(body)) if (~np.isnan(body)).any() else None)

    def result(self) -> dict:
        summary: dict[str, float | int | None] = {}
        for part in PARTS:
            errors = np.concatenate(self._errors[part]) if self._errors[part] else np.zeros(0)
            summary[f"{part}_error"] = float(errors.mean()) if errors.size else None
            for a in PCK_THRESHOLDS:
                total = self._visible[part]
                summary[f"{part}_pck@{a}"] = self._correct.get((part, a), 0) / total if total else None
        summary["frames_not_found"] = len(self.not_found)
        return {"summary": summary, "per_frame_error": self.per_frame, "not_found_frames": self.not_found}
