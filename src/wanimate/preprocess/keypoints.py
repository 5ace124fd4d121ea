"""The COCO-WholeBody-133 keypoint layout and the official Wan-Animate views of it.

Every pose backend returns ``(133, 3)`` float32 arrays of (x, y, score) in pixel
coordinates of the frame it saw; everything downstream (tracking, smoothing,
retargeting, drawing, face crops) works on that one layout.
"""

from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 133

# COCO-17 body, then the six foot points, 68 face points, 21 + 21 hand points.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
L_BIG_TOE, L_SMALL_TOE, L_HEEL, R_BIG_TOE, R_SMALL_TOE, R_HEEL = 17, 18, 19, 20, 21, 22
BODY = slice(0, 17)
FEET = slice(17, 23)
FACE = slice(23, 91)
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)

# OpenPose-18 body order (the official skeleton), then the two toe points the official code adds.
OPENPOSE_NAMES = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
    "l_toe",
    "r_toe",
)
_OPENPOSE_FROM_COCO = (
    NOSE,
    -1,
    R_SHOULDER,
    R_ELBOW,
    R_WRIST,
    L_SHOULDER,
    L_ELBOW,
    L_WRIST,
    R_HIP,
    R_KNEE,
    R_ANKLE,
    L_HIP,
    L_KNEE,
    L_ANKLE,
    R_EYE,
    L_EYE,
    R_EAR,
    L_EAR,
)


def _mean_point(kp: np.ndarray, a: int, b: int) -> np.ndarray:
    """Midpoint with the weaker of the two scores, as the official neck and toe points."""
    return np.array([(kp[a, 0] + kp[b, 0]) / 2, (kp[a, 1] + kp[b, 1]) / 2, min(kp[a, 2], kp[b, 2])], np.float32)


def body20(kp133: np.ndarray) -> np.ndarray:
    """OpenPose-18 body plus left and right toe, ``(20, 3)``: what the skeleton video draws."""
    out = np.zeros((20, 3), np.float32)
    for i, src in enumerate(_OPENPOSE_FROM_COCO):
        out[i] = _mean_point(kp133, L_SHOULDER, R_SHOULDER) if src < 0 else kp133[src]
    out[18] = _mean_point(kp133, L_BIG_TOE, L_SMALL_TOE)
    out[19] = _mean_point(kp133, R_BIG_TOE, R_SMALL_TOE)
    return out


def empty_pose() -> np.ndarray:
    return np.zeros((NUM_KEYPOINTS, 3), np.float32)
