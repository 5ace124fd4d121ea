"""Face motion the bones cannot carry: eye aperture, mouth opening and head turn.

Head tilt and size already come from the head bone. What is left is done by one small
``remap`` of the reference face before the mesh warp, so the expression moves with the
head for free:

- eyes: the eye is squashed or stretched vertically around its centre by the driver's eye
  aperture relative to the driver's usual aperture (its open-eye level over the clip);
- mouth: the lower lip and chin drop by the driver's inner-lip gap beyond its closed-mouth
  level, and the opened gap is painted as a dark mouth interior;
- turn: the inner face (eyes, nose, mouth) slides along the eye line by how far the driver's
  nose sits off the eye midpoint compared with the character's, while the face outline
  stays: the classic 2.5D cue for a head turning.

Every displacement profile is monotonic, so no setting folds the image onto itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from wanimate.preprocess import keypoints as K
from wanimate.preview.rig import visible

_F = K.FACE.start
R_EYE = tuple(_F + i for i in range(36, 42))  # iBUG order: outer corner, 2 upper, inner corner, 2 lower
L_EYE = tuple(_F + i for i in range(42, 48))
INNER_LIPS = tuple(_F + i for i in range(60, 68))
MOUTH_CORNERS = (_F + 48, _F + 54)
NOSE_TIP = _F + 30
CHIN = _F + 8
FACE_POINTS = tuple(range(K.FACE.start, K.FACE.stop))
MOUTH_INTERIOR = np.array([45, 18, 22], np.float32)


@dataclass(frozen=True)
class FaceState:
    """Scale-free measurements of one face: what transfers from driver to character."""

    eyes: tuple[float, float]  # aperture / width, right then left eye
    mouth: float  # inner-lip gap / mouth width
    turn: float  # nose offset from the eye midpoint along the eye line / eye distance


def _eye_ratio(kp: np.ndarray, eye: tuple[int, ...]) -> float:
    p = kp[list(eye), :2]
    width = np.linalg.norm(p[3] - p[0]) + 1e-6
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * width))


def face_state(kp: np.ndarray) -> FaceState | None:
    """Measure a face, or None when the landmarks needed are not all confidently seen."""
    needed = (*R_EYE, *L_EYE, *INNER_LIPS, *MOUTH_CORNERS, NOSE_TIP)
    if not visible(kp, needed):
        return None
    r_c, l_c = kp[list(R_EYE), :2].mean(axis=0), kp[list(L_EYE), :2].mean(axis=0)
    axis = l_c - r_c
    eye_dist = float(np.linalg.norm(axis)) + 1e-6
    turn = float(np.dot(kp[NOSE_TIP, :2] - (r_c + l_c) / 2, axis / eye_dist)) / eye_dist
    lips = kp[list(INNER_LIPS), :2]
    gap = float(np.linalg.norm(lips[2] - lips[6]))  # iBUG 62 (upper middle) to 66 (lower middle)
    width = float(np.linalg.norm(kp[MOUTH_CORNERS[1], :2] - kp[MOUTH_CORNERS[0], :2])) + 1e-6
    return FaceState((_eye_ratio(kp, R_EYE), _eye_ratio(kp, L_EYE)), gap / width, turn)


@dataclass(frozen=True)
class DriverNeutral:
    """The driver's resting face over the clip: open eyes and a closed mouth."""

    eyes: tuple[float, float]
    mouth: float

    @classmethod
    def from_clip(cls, states: list[FaceState | None]) -> DriverNeutral | None:
        seen = [s for s in states if s is not None]
        if not seen:
            return None
        eyes = np.array([s.eyes for s in seen])
        return cls(
            (float(np.percentile(eyes[:, 0], 70)), float(np.percentile(eyes[:, 1], 70))),
            float(np.percentile([s.mouth for s in seen], 20)),
        )


def _squash(offset: np.ndarray, inner: float, outer: float, factor: float) -> np.ndarray:
    """Source offset for a piecewise-linear, monotonic scaling of ``[-inner, inner]`` by ``factor``.

    Inside ``inner * factor`` the content is scaled, out to ``outer`` the surroundings take
    up the difference, beyond ``outer`` nothing moves.
    """
    a = np.abs(offset)
    scaled = inner * factor
    mid = inner + (a - scaled) * (outer - inner) / (outer - scaled)
    src = np.where(a <= scaled, a / factor, np.where(a <= outer, mid, a))
    return np.sign(offset) * src


class FaceAnimator:
    """Deforms the reference face to the driver's expression, in texture coordinates."""

    def __init__(self, reference: np.ndarray, offset: tuple[int, int], texture_shape: tuple[int, int]) -> None:
        self.ref = reference.copy()
        self.ref[:, :2] -= np.array(offset, np.float32)
        self.state = face_state(self.ref)
        self.box = (0, 0, 0, 0)
        self.grid = (np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))
        if self.state is None:
            return
        pts = self.ref[list(FACE_POINTS), :2][self.ref[list(FACE_POINTS), 2] > 0]
        h, w = texture_shape
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = (hi - lo) * 0.25
        x0, y0 = np.clip(np.floor(lo - pad), 0, [w, h]).astype(int)
        x1, y1 = np.clip(np.ceil(hi + pad), 0, [w, h]).astype(int)
        self.box = (int(x0), int(y0), int(x1), int(y1))
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.grid = (gx, gy)

    @property
    def active(self) -> bool:
        return self.state is not None and self.box[2] > self.box[0] and self.box[3] > self.box[1]

    def apply(self, texture: np.ndarray, driver: FaceState | None, neutral: DriverNeutral | None) -> np.ndarray:
        """A copy of ``texture`` (RGB) with the face region following ``driver``."""
        if not self.active or driver is None or neutral is None:
            return texture
        assert self.state is not None
        gx, gy = self.grid
        map_x, map_y = gx.copy(), gy.copy()
        for i, eye in enumerate((R_EYE, L_EYE)):
            factor = float(np.clip(driver.eyes[i] / max(neutral.eyes[i], 1e-3), 0.1, 1.5))
            self._eye(map_x, map_y, eye, factor)
        gap = self._mouth(map_y, max(0.0, driver.mouth - neutral.mouth))
        self._turn(map_x, map_y, driver.turn - self.state.turn)
        x0, y0, x1, y1 = self.box
        out = texture.copy()
        patch = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if gap is not None:
            patch = (patch * (1 - gap[..., None]) + MOUTH_INTERIOR * gap[..., None]).astype(np.uint8)
        out[y0:y1, x0:x1] = patch
        return out

    def _eye(self, map_x: np.ndarray, map_y: np.ndarray, eye: tuple[int, ...], factor: float) -> None:
        p = self.ref[list(eye), :2]
        cx, cy = p.mean(axis=0)
        width = float(np.linalg.norm(p[3] - p[0]))
        inner = max(1.0, float(np.abs(p[[1, 2, 4, 5], 1] - cy).max()) * 1.3)
        outer = inner * 1.5 + 0.35 * width + 1
        gx, gy = self.grid
        across = np.clip(1.0 - np.abs(gx - cx) / (0.85 * width + 1), 0.0, 1.0)
        across = across * across * (3 - 2 * across)
        src = cy + _squash(gy - cy, inner, outer, factor)
        map_y += across * (src - gy)

    def _mouth(self, map_y: np.ndarray, opening: float) -> np.ndarray | None:
        corners = self.ref[list(MOUTH_CORNERS), :2]
        width = float(np.linalg.norm(corners[1] - corners[0]))
        drop = min(opening, 0.4) * width
        if drop < 0.75:
            return None
        lips = self.ref[list(INNER_LIPS), :2]
        # The line where the lips meet, corner to corner through the middle of each lip pair
        # (iBUG 60, 61/67, 62/66, 63/65, 64): a smile's curve, not a straight cut.
        meet = np.stack([lips[0], (lips[1] + lips[7]) / 2, (lips[2] + lips[6]) / 2, (lips[3] + lips[5]) / 2, lips[4]])
        meet = meet[np.argsort(meet[:, 0])]
        cx = float(corners[:, 0].mean())
        gx, gy = self.grid
        lip_y = np.interp(gx, meet[:, 0], meet[:, 1]).astype(np.float32)
        reach = max(drop * 2.0, float(self.ref[CHIN, 1] - meet[:, 1].max()) + 0.3 * width)
        # The lower lip drops along an elliptical arc between the fixed mouth corners, so the
        # opening is rounded like a real one; the chin below moves with it.
        arc = np.sqrt(np.clip(1.0 - ((gx - cx) / (0.5 * width + 1)) ** 2, 0.0, 1.0))
        below = gy - lip_y
        shift = drop * arc
        # Below the lip line, [shift, reach] maps back onto [0, reach]: the chin is pushed down.
        src = np.where(
            (below > 0) & (below < reach), lip_y + np.clip((below - shift) * reach / (reach - shift), 0, None), gy
        )
        map_y[:] = np.where(below > 0, src + (map_y - gy), map_y)
        gap = np.clip(np.minimum(below, shift - below), 0.0, 1.5) / 1.5
        return gap.astype(np.float32)

    def _turn(self, map_x: np.ndarray, map_y: np.ndarray, turn: float) -> None:
        assert self.state is not None
        r_c, l_c = self.ref[list(R_EYE), :2].mean(axis=0), self.ref[list(L_EYE), :2].mean(axis=0)
        axis = l_c - r_c
        eye_dist = float(np.linalg.norm(axis)) + 1e-6
        move = float(np.clip(turn * 0.8, -0.35, 0.35)) * eye_dist
        if abs(move) < 0.3:
            return
        unit = axis / eye_dist
        centre = self.ref[NOSE_TIP, :2]
        gx, gy = self.grid
        bump = np.exp(-(((gx - centre[0]) / (1.3 * eye_dist)) ** 2) - ((gy - centre[1]) / (1.6 * eye_dist)) ** 2)
        map_x -= move * unit[0] * bump
        map_y -= move * unit[1] * bump
