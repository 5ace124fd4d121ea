"""Skeleton drawing checked pixel by pixel on hand-placed keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from wanimate.preprocess.keypoints import FACE, LEFT_HAND, R_ELBOW, R_SHOULDER, RIGHT_HAND
from wanimate.preprocess.skeleton import draw_skeleton, draw_skeleton_video, hand_thickness, stick_width

H, W = 720, 1280


def pose(points: dict[int, tuple[float, float]], score: float = 0.9) -> np.ndarray:
    kp = np.zeros((133, 3), np.float32)
    for index, (x, y) in points.items():
        kp[index] = (x, y, score)
    return kp


def test_stick_widths_follow_the_official_v2_rule() -> None:
    assert stick_width(720, 1280) == 2
    assert stick_width(1280, 720) == 2
    assert stick_width(1080, 1920) == 4
    assert stick_width(144, 176) == 1
    assert hand_thickness(720, 1280) == 1
    assert hand_thickness(1080, 1920) == 2


def test_limb_is_a_60_percent_ellipse_and_joints_full_colour() -> None:
    # Right upper arm (official limb 2, colour (255, 170, 0)) lying horizontally.
    img = draw_skeleton(pose({R_SHOULDER: (400, 300), R_ELBOW: (500, 300)}), H, W)
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert tuple(img[300, 450]) == (153, 102, 0)
    assert tuple(img[300, 500]) == (255, 255, 0)  # right elbow joint colour
    assert tuple(img[300, 400]) == (255, 170, 0)  # right shoulder joint colour
    # Half-thickness 2 at 720p: rows 298..302 are painted at the midpoint, 296 and 304 are not.
    assert (img[298:303, 450] == (153, 102, 0)).all()
    assert not img[296, 450].any() and not img[304, 450].any()
    # Nothing else is drawn: no neck (it needs both shoulders), no other limbs.
    painted = np.argwhere(img.any(axis=-1))
    assert painted[:, 1].min() >= 398 and painted[:, 1].max() <= 502


def test_output_is_rgb_like_the_official_video() -> None:
    # Neck → right shoulder is the first limb, pure red at 60%: it must land in channel 0.
    img = draw_skeleton(pose({5: (700, 200), 6: (500, 200)}), H, W)
    assert tuple(img[200, 550]) == (153, 0, 0)
    assert tuple(img[200, 600]) == (255, 85, 0)  # the neck joint, midpoint of the shoulders


def test_low_score_point_draws_nothing() -> None:
    low = pose({R_SHOULDER: (400, 300)}, score=0.4)
    low[R_ELBOW] = (500, 300, 0.9)
    img = draw_skeleton(low, H, W)
    assert not img[300, 400].any() and not img[300, 450].any()
    assert tuple(img[300, 500]) == (255, 255, 0)
    assert draw_skeleton(low, H, W, threshold=0.3)[300, 450].any()


def test_face_landmarks_are_not_drawn() -> None:
    kp = np.zeros((133, 3), np.float32)
    kp[FACE] = (640, 360, 1.0)
    kp[FACE, 0] += np.arange(68)
    assert not draw_skeleton(kp, H, W).any()


def test_hand_lines_are_rainbow_and_joints_blue() -> None:
    kp = np.zeros((133, 3), np.float32)
    for hand, x0 in ((LEFT_HAND, 200), (RIGHT_HAND, 800)):
        kp[hand.start] = (x0, 400, 0.9)
        kp[hand.start + 1] = (x0 + 40, 400, 0.9)  # thumb base: edge 0, hue 0 (red)
        kp[hand.start + 17] = (x0, 440, 0.9)  # little-finger base: edge 16, hue 0.8
    img = draw_skeleton(kp, H, W)
    for x0 in (200, 800):
        assert tuple(img[400, x0 + 20]) == (255, 0, 0)
        assert tuple(img[420, x0]) == (204, 0, 255)  # hsv(0.8, 1, 1) = (0.8, 0, 1)
        assert tuple(img[400, x0]) == (0, 0, 255)
        assert tuple(img[440, x0]) == (0, 0, 255)
        assert not img[402, x0 + 20].any()  # thickness 1 at 720p


def test_hand_points_on_the_top_or_left_border_are_treated_as_missing() -> None:
    kp = np.zeros((133, 3), np.float32)
    kp[LEFT_HAND.start] = (0.5, 300, 0.9)
    kp[LEFT_HAND.start + 1] = (50, 300, 0.9)
    img = draw_skeleton(kp, H, W)
    assert not img[300, 25].any()
    assert tuple(img[300, 50]) == (0, 0, 255)


def test_nan_points_count_as_missing_and_video_yields_frames() -> None:
    kp = pose({R_SHOULDER: (400, 300), R_ELBOW: (500, 300)})
    kp[R_ELBOW, :2] = np.nan
    frames = list(draw_skeleton_video(np.stack([kp, kp]), H, W))
    assert len(frames) == 2
    assert tuple(frames[0][300, 400]) == (255, 170, 0)
    assert not frames[1][300, 450].any() and frames[1].sum() == frames[0].sum()
    with pytest.raises(ValueError):
        draw_skeleton(np.zeros((17, 3), np.float32), H, W)
