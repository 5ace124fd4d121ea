"""Face boxes (official ratios, smoothing, gaps) and aspect-keeping crops."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from wanimate.errors import WanimateError
from wanimate.preprocess.face_crop import crop_face, face_box, face_boxes
from wanimate.preprocess.keypoints import FACE


def face_pose(cx: float, cy: float, rx: float = 40.0, ry: float = 50.0) -> np.ndarray:
    kp = np.zeros((133, 3), np.float32)
    t = np.linspace(0, 2 * math.pi, 68, endpoint=False)
    kp[FACE, 0] = cx + rx * np.cos(t)
    kp[FACE, 1] = cy + ry * np.sin(t)
    kp[FACE, 2] = 0.9
    return kp


def test_box_uses_official_ratios() -> None:
    kp = np.zeros((133, 3), np.float32)
    kp[FACE, 2] = 1.0
    kp[FACE, 0] = np.linspace(100, 200, 68)
    kp[FACE, 1] = np.linspace(100, 300, 68)
    box = face_box(kp)
    grow = math.sqrt(1.3)
    dw, dh = (100 * grow - 100) / 2, (200 * grow - 200) / 4
    np.testing.assert_allclose(box, [100 - dw, 100 - 3 * dh, 200 + dw, 300 + dh], rtol=1e-6)
    # Area grows by 1.3 and the aspect ratio is kept.
    w, h = box[2] - box[0], box[3] - box[1]
    assert w * h == pytest.approx(1.3 * 100 * 200, rel=1e-6)
    assert w / h == pytest.approx(0.5, rel=1e-6)


def test_low_score_landmarks_do_not_count() -> None:
    kp = face_pose(300, 200)
    kp[FACE.start : FACE.start + 60, 2] = 0.1
    assert face_box(kp) is None
    kp[FACE.start, :2] = (5000, 5000)  # a stray low-score point must not stretch the box
    kp[FACE.start + 1 :, 2] = 0.9
    box = face_box(kp)
    assert box is not None and box[2] < 400


def test_boxes_follow_a_moving_face_with_less_jitter() -> None:
    rng = np.random.default_rng(0)
    frames = 60
    truth = np.stack([200 + 4.0 * np.arange(frames), 240 + 1.5 * np.arange(frames)], axis=1)
    poses = []
    for cx, cy in truth:
        kp = face_pose(cx, cy)
        kp[FACE, :2] += rng.uniform(-6, 6, size=2)  # the whole landmark set jitters per frame
        kp[FACE, :2] *= 1 + rng.uniform(-0.03, 0.03)
        poses.append(kp)
    keypoints = np.stack(poses)
    raw = face_boxes(keypoints, (720, 1280), smoothing=0)
    smooth = face_boxes(keypoints, (720, 1280))

    def centre_error(boxes: np.ndarray) -> float:
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        # The official box centre sits below the landmarks' centre by a fixed amount; remove it.
        offset = np.median(centre - truth, axis=0)
        return float(np.sqrt(((centre - truth - offset)[5:-5] ** 2).sum(axis=1).mean()))

    assert centre_error(smooth) < 0.6 * centre_error(raw)
    # It still follows the face: no lag over the run.
    assert np.abs(np.diff((smooth[:, 0] + smooth[:, 2]) / 2)[10:-10].mean() - 4.0) < 0.2
    size_jitter = np.std(np.diff(smooth[:, 2] - smooth[:, 0]))
    assert size_jitter < 0.5 * np.std(np.diff(raw[:, 2] - raw[:, 0]))


def test_gap_takes_the_nearest_box() -> None:
    keypoints = np.stack([face_pose(100 + 50 * i, 200) for i in range(8)])
    keypoints[2:5, FACE, 2] = 0.0
    boxes = face_boxes(keypoints, (720, 1280), smoothing=0)
    np.testing.assert_allclose(boxes[2], boxes[1])
    np.testing.assert_allclose(boxes[3], boxes[1])  # a tie takes the earlier frame
    np.testing.assert_allclose(boxes[4], boxes[5])
    keypoints[:3, FACE, 2] = 0.0
    boxes = face_boxes(keypoints, (720, 1280), smoothing=0)
    np.testing.assert_allclose(boxes[0], boxes[5])


def test_no_face_anywhere_is_a_user_error() -> None:
    with pytest.raises(WanimateError, match="face"):
        face_boxes(np.zeros((5, 133, 3), np.float32), (720, 1280))


def test_crop_keeps_a_circle_round() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(frame, (320, 240), 60, (255, 255, 255), thickness=-1)
    box = np.array([220.0, 190.0, 420.0, 290.0])  # 200 x 100: stretching would make a 2:1 ellipse
    crop = crop_face(frame, box)
    assert crop.shape == (512, 512, 3)
    ys, xs = np.nonzero(crop[..., 0] > 127)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert abs(width - height) <= 2
    assert width == pytest.approx(120 * 512 / 200, abs=3)
    assert (xs.mean(), ys.mean()) == pytest.approx((255.5, 255.5), abs=2)


def test_crop_outside_the_frame_is_black_and_the_face_stays_centred() -> None:
    frame = np.full((200, 300, 3), 90, np.uint8)
    crop = crop_face(frame, np.array([-100.0, -50.0, 100.0, 150.0]), size=128)
    assert crop.shape == (128, 128, 3)
    assert not crop[:10, :10].any() and (crop[-10:, -10:] == 90).all()
    assert not crop_face(frame, np.array([1000.0, 1000.0, 1100.0, 1100.0]), size=64).any()


def test_nearest_face_frame_matches_brute_force_without_a_t_by_f_matrix():
    from wanimate.preprocess.face_crop import _nearest

    rng = np.random.default_rng(0)
    for _ in range(300):
        count = int(rng.integers(1, 80))
        found = np.sort(rng.choice(count, int(rng.integers(1, count + 1)), replace=False))
        brute = found[np.argmin(np.abs(np.arange(count)[:, None] - found[None, :]), axis=1)]
        assert np.array_equal(_nearest(found, count), brute)
