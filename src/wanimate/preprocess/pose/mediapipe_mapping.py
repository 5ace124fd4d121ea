"""mediapipe results in the COCO-WholeBody-133 layout: the mapping tables and the conversion.

Body and feet come from BlazePose's 33 landmarks, the 68 iBUG face points from chosen vertices
of the 468-point face mesh, and the hands are copied as they are (mediapipe's 21 hand landmarks
are already in COCO-WholeBody's order). docs/pose.md has the tables with their caveats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wanimate.preprocess.keypoints import FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND
from wanimate.preprocess.pose.base import PersonPose, drop_outside, keypoint_box

# COCO-WholeBody index -> BlazePose-33 landmark (body 0..16 then feet 17..22).
# BlazePose has no small toe: both toes take its single ``foot_index`` (the tip of the foot), so
# the official toe point (mean of big and small toe) lands on the foot tip.
BLAZEPOSE_FOR_COCO = (
    0, 2, 5, 7, 8,  # nose, left eye, right eye, left ear, right ear
    11, 12, 13, 14, 15, 16,  # shoulders, elbows, wrists (left first)
    23, 24, 25, 26, 27, 28,  # hips, knees, ankles
    31, 31, 29,  # left big toe, left small toe, left heel
    32, 32, 30,  # right big toe, right small toe, right heel
)  # fmt: skip

# iBUG-68 face point -> mediapipe face-mesh (468) vertex, the widely used correspondence.
FACE68_FROM_MESH = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw 0-16
    71, 63, 105, 66, 107,  # subject's right eyebrow 17-21
    336, 296, 334, 293, 301,  # subject's left eyebrow 22-26
    168, 197, 5, 4,  # nose bridge 27-30
    75, 97, 2, 326, 305,  # nostrils 31-35
    33, 160, 158, 133, 153, 144,  # subject's right eye 36-41
    362, 385, 387, 263, 373, 380,  # subject's left eye 42-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips 48-59
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips 60-67
)  # fmt: skip

# mediapipe gives no per-point score for hands and face mesh; a hand or face it returns has
# already passed the sub-model's own presence threshold (0.5), so its points share this score.
SUBMODEL_SCORE = 0.9
_HEAD_TORSO = (0, 5, 6)  # nose and shoulders: what every visible person shows
MIN_BODY_POINTS = 4  # a face alone (nose, eyes, ears) already gives five


def landmarks_array(lms: Any, n: int) -> np.ndarray:
    """(n, 3) of normalised x, y and visibility."""
    return np.array([(p.x, p.y, p.visibility) for p in lms.landmark[:n]], np.float32)


def holistic_to_coco(result: Any, x0: float, y0: float, width: float, height: float) -> np.ndarray | None:
    """Map one Holistic result, computed on a (crop of a) frame at (x0, y0) of size width x height, to pixels."""
    if result.pose_landmarks is None:
        return None
    kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    scale = np.array([width, height], np.float32)
    offset = np.array([x0, y0], np.float32)
    pose = landmarks_array(result.pose_landmarks, 33)
    body = pose[list(BLAZEPOSE_FOR_COCO)]
    kp[: len(BLAZEPOSE_FOR_COCO), :2] = body[:, :2] * scale + offset
    kp[: len(BLAZEPOSE_FOR_COCO), 2] = body[:, 2]
    if result.face_landmarks is not None:
        face = landmarks_array(result.face_landmarks, 468)[list(FACE68_FROM_MESH)]
        kp[FACE, :2] = face[:, :2] * scale + offset
        kp[FACE, 2] = SUBMODEL_SCORE
    hands = [h for h in (result.left_hand_landmarks, result.right_hand_landmarks) if h is not None]
    for hand in hands:
        pts = landmarks_array(hand, 21)[:, :2] * scale + offset
        # Attach each hand to the nearer body wrist, so "left" always agrees with the body's left.
        d_left = np.linalg.norm(pts[0] - kp[9, :2])
        d_right = np.linalg.norm(pts[0] - kp[10, :2])
        part = LEFT_HAND if d_left <= d_right else RIGHT_HAND
        if kp[part, 2].any():  # both hands claim one wrist: keep the first, it was named that side
            part = RIGHT_HAND if part == LEFT_HAND else LEFT_HAND
        kp[part, :2] = pts
        kp[part, 2] = SUBMODEL_SCORE
    return kp


def person_from_keypoints(kp: np.ndarray, width: int, height: int) -> PersonPose | None:
    """Frame-clipped keypoints, their box and a person score; None when too little is in the frame.

    BlazePose happily reports a body that is almost entirely beyond the border; fewer than
    ``MIN_BODY_POINTS`` confident body points inside the frame is not a usable person.
    """
    kp = drop_outside(kp, width, height)
    if (kp[: len(BLAZEPOSE_FOR_COCO), 2] >= 0.5).sum() < MIN_BODY_POINTS:
        return None
    box = keypoint_box(kp, 0.3)
    if box is None:
        box = keypoint_box(kp, 1e-6)
    if box is None:
        return None
    return PersonPose(kp, box, float(kp[list(_HEAD_TORSO), 2].mean()))
