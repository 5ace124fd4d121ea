"""Checks that a preview did its job, measured on the video itself.

- Pose error: an independent pose estimator (mediapipe) looks at the rendered frames, and
  its body points are compared with the driving skeleton, in torso lengths.
- Colour kept: the hue-saturation histogram of the character in the preview is correlated
  with the cut-out character of the reference image.

The same estimator also poses the demo materials (:mod:`wanimate.preview.demo`); it is a
stand-in for the preprocessing pose backends, with the same COCO-WholeBody-133 output.
"""

from __future__ import annotations

import contextlib
from types import TracebackType

import cv2
import numpy as np

from wanimate.native_logs import quiet_native_logs
from wanimate.preprocess import keypoints as K

# mediapipe pose landmark -> COCO-WholeBody index (mediapipe "left" is the subject's left, as COCO's).
_POSE_TO_COCO = {
    0: K.NOSE, 2: K.L_EYE, 5: K.R_EYE, 7: K.L_EAR, 8: K.R_EAR,
    11: K.L_SHOULDER, 12: K.R_SHOULDER, 13: K.L_ELBOW, 14: K.R_ELBOW, 15: K.L_WRIST, 16: K.R_WRIST,
    23: K.L_HIP, 24: K.R_HIP, 25: K.L_KNEE, 26: K.R_KNEE, 27: K.L_ANKLE, 28: K.R_ANKLE,
    31: K.L_BIG_TOE, 29: K.L_HEEL, 32: K.R_BIG_TOE, 30: K.R_HEEL,
}  # fmt: skip
# Face-mesh vertex for each of the 68 iBUG landmarks (jaw, brows, nose, eyes, outer and inner lips).
_MESH_TO_IBUG = (
    127, 234, 132, 58, 172, 150, 149, 148, 152, 377, 378, 379, 397, 288, 361, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip
_HAND_MID = ((K.LEFT_HAND.start + 9, 17, 19), (K.RIGHT_HAND.start + 9, 18, 20))


class PoseEstimator:
    """mediapipe pose (+ face mesh) returning ``(133, 3)`` COCO-WholeBody keypoints per image.

    Use as a context manager; ``with_face`` adds the 68 face landmarks (score 1 when found). While it is
    open, MediaPipe's native log lines are kept off the terminal (:mod:`wanimate.native_logs`).
    """

    def __init__(self, *, with_face: bool = True) -> None:
        import mediapipe as mp

        self._quiet = contextlib.ExitStack()
        self._quiet.enter_context(quiet_native_logs())
        try:
            self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
            self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) if with_face else None
        except BaseException:
            self._quiet.close()
            raise

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pose.close()
        if self._mesh is not None:
            self._mesh.close()
        self._quiet.close()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        out = K.empty_pose()
        image = np.ascontiguousarray(image)
        found = self._pose.process(image).pose_landmarks
        if found is not None:
            lm = np.array([(p.x * w, p.y * h, p.visibility) for p in found.landmark], np.float32)
            for src, dst in _POSE_TO_COCO.items():
                out[dst] = lm[src]
            out[K.L_SMALL_TOE], out[K.R_SMALL_TOE] = out[K.L_BIG_TOE], out[K.R_BIG_TOE]
            for dst, a, b in _HAND_MID:
                out[dst] = [(lm[a, 0] + lm[b, 0]) / 2, (lm[a, 1] + lm[b, 1]) / 2, min(lm[a, 2], lm[b, 2])]
        if self._mesh is not None:
            faces = self._mesh.process(image).multi_face_landmarks
            if faces:
                mesh = faces[0].landmark
                for i, v in enumerate(_MESH_TO_IBUG):
                    out[K.FACE.start + i] = (mesh[v].x * w, mesh[v].y * h, 1.0)
        return out


def body_scale(kp: np.ndarray, min_score: float = 0.5) -> float | None:
    """Torso length (shoulder midpoint to hip midpoint); shoulder width when the hips are not seen.

    Shoulder width is roughly 0.7 of a torso length, so the fallback makes the error stricter,
    never looser.
    """
    if min(kp[K.L_SHOULDER, 2], kp[K.R_SHOULDER, 2]) < min_score:
        return None
    shoulders = (kp[K.L_SHOULDER, :2] + kp[K.R_SHOULDER, :2]) / 2
    if min(kp[K.L_HIP, 2], kp[K.R_HIP, 2]) >= min_score:
        return float(np.linalg.norm(shoulders - (kp[K.L_HIP, :2] + kp[K.R_HIP, :2]) / 2))
    return float(np.linalg.norm(kp[K.L_SHOULDER, :2] - kp[K.R_SHOULDER, :2]))


def pose_error(
    found: np.ndarray,
    driving: np.ndarray,
    min_score: float = 0.5,
    *,
    reference: np.ndarray | None = None,
    min_motion: float = 0.25,
) -> float:
    """Mean distance of the body points (COCO 0..16) seen in both, in units of the driver's torso.

    ``found`` and ``driving`` are ``(T, 133, 3)``. With ``reference`` (the character's own
    pose), only points that the driver moved at least ``min_motion`` torso lengths away from
    it count: the points that show whether the character followed, not the ones it got
    right by standing still. Frames where the driver shows no shoulders are skipped; NaN
    when nothing could be compared.
    """
    errors = []
    for f, d in zip(found, driving, strict=True):
        scale = body_scale(d, min_score)
        if not scale:
            continue
        both = (f[K.BODY, 2] >= min_score) & (d[K.BODY, 2] >= min_score)
        if reference is not None:
            both &= np.linalg.norm(d[K.BODY, :2] - reference[K.BODY, :2], axis=1) >= min_motion * scale
        if both.any():
            errors.append(np.linalg.norm(f[K.BODY][both, :2] - d[K.BODY][both, :2], axis=1) / scale)
    return float(np.concatenate(errors).mean()) if errors else float("nan")


MIN_CHROMA = 40  # saturation and value (0-255) below which a pixel's hue is noise


def hue_sat_histogram(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Normalised 2D hue-saturation histogram of the masked, visibly coloured pixels.

    Black, white and grey pixels are left out: their hue is arbitrary, and counting them
    would make any two mostly-grey regions (a dark helmet, a blacked-out performer) look
    alike. Lightness is ignored on purpose, so relighting does not count as a colour change.
    """
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    chromatic = mask & (hsv[..., 1] >= MIN_CHROMA) & (hsv[..., 2] >= MIN_CHROMA)
    hist = cv2.calcHist([hsv], [0, 1], chromatic.astype(np.uint8), [30, 32], [0, 180, 0, 256])
    return cv2.normalize(hist, None, 1.0, 0.0, cv2.NORM_L1)


def colour_correlation(image_a: np.ndarray, mask_a: np.ndarray, image_b: np.ndarray, mask_b: np.ndarray) -> float:
    """``cv2.compareHist`` correlation of the two regions' hue-saturation histograms (1 = same).

    A region with no coloured pixel at all has no colour to keep or match: 0.
    """
    hist_a, hist_b = hue_sat_histogram(image_a, mask_a), hue_sat_histogram(image_b, mask_b)
    if not hist_a.any() or not hist_b.any():
        return 0.0
    return float(cv2.compareHist(hist_a, hist_b, cv2.HISTCMP_CORREL))
