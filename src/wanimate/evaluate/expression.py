"""Expression fidelity: mouth, eyes and head turn of the output against the driver's face.

Each face gives five numbers per frame from its 68 landmarks: mouth opening (inner-lip gap
over mouth width), eye opening (eye height over width, both eyes averaged), and head yaw,
pitch and roll in degrees from ``cv2.solvePnP`` on six points of a generic 3D face. The
ratios are scale-free, so a character with another face shape is compared by how its
expression *moves*: the report gives each series' Pearson correlation with the driver's,
the lag (in frames, positive = the output is late) that maximises it, and the mean absolute
difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from wanimate.preprocess import keypoints as K

_F = K.FACE.start
R_EYE = [_F + i for i in range(36, 42)]  # iBUG order: outer corner, two upper, inner corner, two lower
L_EYE = [_F + i for i in range(42, 48)]
MOUTH_CORNERS = (_F + 48, _F + 54)
INNER_LIP_MIDDLE = (_F + 62, _F + 66)
# iBUG points and a generic face in image-like axes (x right, y down, z away from the camera), mm.
PNP_POINTS = (_F + 30, _F + 8, _F + 36, _F + 45, _F + 48, _F + 54)  # nose tip, chin, eye and mouth corners
PNP_MODEL = np.array(
    [(0, 0, 0), (0, 330, 65), (-225, -170, 135), (225, -170, 135), (-150, 150, 125), (150, 150, 125)], np.float64
)
MEASURES = ("mouth", "eyes", "yaw", "pitch", "roll")
FACE_SCORE = 0.5
MAX_LAG = 15


def _eye_ratio(kp: np.ndarray, eye: list[int]) -> float:
    p = kp[eye, :2]
    width = float(np.linalg.norm(p[3] - p[0])) + 1e-6
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * width))


def head_angles(kp: np.ndarray, frame_size: tuple[int, int]) -> tuple[float, float, float] | None:
    """Yaw, pitch, roll in degrees (0, 0, 0 = facing the camera upright), or None if PnP fails."""
    height, width = frame_size
    focal = float(max(height, width))
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float64)
    image = kp[list(PNP_POINTS), :2].astype(np.float64)
    ok, rvec, _ = cv2.solvePnP(PNP_MODEL, image, camera, None, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rvec)
    pitch, yaw, roll = cv2.RQDecomp3x3(rotation)[0]
    # RQDecomp3x3 returns pitch near +-180 when the fit flips the face; fold it back.
    pitch = (pitch + 180) % 360 - 180
    if abs(pitch) > 90:
        pitch = pitch - 180 if pitch > 0 else pitch + 180
    return float(yaw), float(pitch), float(roll)


def face_measures(kp: np.ndarray | None, frame_size: tuple[int, int]) -> dict[str, float] | None:
    """The five measures of one face, or None when its landmarks are not confidently seen."""
    if kp is None or (kp[K.FACE, 2] >= FACE_SCORE).sum() < 60:
        return None
    width = float(np.linalg.norm(kp[MOUTH_CORNERS[1], :2] - kp[MOUTH_CORNERS[0], :2])) + 1e-6
    gap = float(np.linalg.norm(kp[INNER_LIP_MIDDLE[1], :2] - kp[INNER_LIP_MIDDLE[0], :2]))
    angles = head_angles(kp, frame_size)
    if angles is None:
        return None
    yaw, pitch, roll = angles
    eyes = (_eye_ratio(kp, R_EYE) + _eye_ratio(kp, L_EYE)) / 2
    return {"mouth": gap / width, "eyes": eyes, "yaw": yaw, "pitch": pitch, "roll": roll}


def correlation_and_lag(driver: np.ndarray, output: np.ndarray, max_lag: int = MAX_LAG) -> tuple[float | None, int]:
    """Pearson correlation at the best lag in [-max_lag, max_lag] (NaNs skipped), and that lag.

    Lag ``k`` pairs driver frame ``t`` with output frame ``t + k``. A series that does not
    move has no correlation to speak of: None.
    """
    best: tuple[float | None, int] = (None, 0)
    for lag in range(-max_lag, max_lag + 1):
        a = driver[max(0, -lag) : len(driver) - max(0, lag)]
        b = output[max(0, lag) : len(output) - max(0, -lag)]
        ok = ~(np.isnan(a) | np.isnan(b))
        if ok.sum() < 3 or np.std(a[ok]) < 1e-9 or np.std(b[ok]) < 1e-9:
            continue
        r = float(np.corrcoef(a[ok], b[ok])[0, 1])
        if best[0] is None or r > best[0] + 1e-12 or (abs(r - best[0]) <= 1e-12 and abs(lag) < abs(best[1])):
            best = (r, lag)
    return best


@dataclass
class ExpressionFidelity:
    output_size: tuple[int, int]
    driver_size: tuple[int, int]
    driver: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MEASURES})
    output: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MEASURES})

    def add(self, found: np.ndarray | None, driver: np.ndarray | None) -> None:
        for series, kp, size in ((self.output, found, self.output_size), (self.driver, driver, self.driver_size)):
            measured = face_measures(kp, size)
            for m in MEASURES:
                series[m].append(measured[m] if measured else float("nan"))

    def result(self) -> dict:
        summary: dict[str, float | int | None] = {}
        driver_faces = int((~np.isnan(np.array(self.driver["mouth"]))).sum())
        output_faces = int((~np.isnan(np.array(self.output["mouth"]))).sum())
        summary["driver_face_frames"] = driver_faces
        summary["output_face_frames"] = output_faces
        for m in MEASURES:
            d, o = np.array(self.driver[m]), np.array(self.output[m])
            r, lag = correlation_and_lag(d, o, min(MAX_LAG, max(len(d) // 4, 0)))
            both = ~(np.isnan(d) | np.isnan(o))
            summary[f"{m}_correlation"] = r
            summary[f"{m}_lag"] = lag if r is not None else None
            summary[f"{m}_mean_abs_diff"] = float(np.abs(d[both] - o[both]).mean()) if both.any() else None
        note = None if driver_faces else "no face found in any driver frame: expression fidelity not measured"
        return {"summary": summary, "driver": _clean(self.driver), "output": _clean(self.output), "note": note}


def _clean(series: dict[str, list[float]]) -> dict[str, list[float | None]]:
    """JSON has no NaN: missing values become null."""
    return {k: [None if np.isnan(v) else round(v, 5) for v in values] for k, values in series.items()}
