"""Retargeting on synthetic skeletons whose true bone lengths and angles are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wanimate.errors import WanimateError
from wanimate.preprocess.keypoints import FACE, LEFT_HAND, RIGHT_HAND, body20
from wanimate.preprocess.retarget import letterbox, map_points, retarget
from wanimate.preprocess.skeleton import LIMBS

# body20 → COCO-WholeBody index (the neck is implied by the shoulders).
TO_COCO = {0: 0, 2: 6, 3: 8, 4: 10, 5: 5, 6: 7, 7: 9, 8: 12, 9: 14, 10: 16, 11: 11, 12: 13, 13: 15}
TO_COCO |= {14: 2, 15: 1, 16: 4, 17: 3}

# Per limb (same order as LIMBS): length in pixels and direction in degrees (image axes, y down).
HUMAN = [40, 40, 60, 55, 60, 55, 110, 90, 85, 110, 90, 85, 35, 10, 12, 10, 12, 25, 25]
STANDING = [0, 180, 95, 90, 85, 90, 100, 90, 90, 80, 90, 90, -90, -150, 180, -30, 0, 60, 120]


def make_pose(lengths=HUMAN, angles=STANDING, neck=(300.0, 150.0), *, palm: float = 12.0) -> np.ndarray:
    """A (133, 3) pose built limb by limb from the neck, with hands and a face attached."""
    p20 = np.zeros((20, 2))
    p20[1] = neck
    for (a, b), length, angle in zip(LIMBS, lengths, angles, strict=True):
        p20[b] = p20[a] + length * np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    kp = np.zeros((133, 3), np.float32)
    kp[:, 2] = 1.0
    for i20, coco in TO_COCO.items():
        kp[coco, :2] = p20[i20]
    for ankle, toe, first in ((13, 18, 17), (10, 19, 20)):
        kp[first, :2] = p20[toe] + (2, 0)  # big and small toe average to the toe
        kp[first + 1, :2] = p20[toe] - (2, 0)
        kp[first + 2, :2] = p20[ankle] + (0, 3)  # heel
    for hand, wrist, forearm in ((LEFT_HAND, 7, 5), (RIGHT_HAND, 4, 3)):
        direction = math.radians(angles[forearm])
        kp[hand.start, :2] = p20[wrist]
        for i in range(1, 21):
            finger, joint = divmod(i - 1, 4)  # point 9 is the middle finger's base, ``palm`` away
            spread = direction + math.radians((finger - 2) * 15)
            reach = palm * (1 + 0.4 * joint)
            kp[hand.start + i, :2] = p20[wrist] + reach * np.array([math.cos(spread), math.sin(spread)])
    t = np.linspace(0, 2 * math.pi, 68, endpoint=False)
    kp[FACE, 0] = p20[0, 0] + 9 * np.cos(t)
    kp[FACE, 1] = p20[0, 1] + 11 * np.sin(t)
    return kp


def bones(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = body20(kp)[:, :2].astype(np.float64)
    vec = np.array([p[b] - p[a] for a, b in LIMBS])
    return np.linalg.norm(vec, axis=1), np.degrees(np.arctan2(vec[:, 1], vec[:, 0]))


def angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180) % 360 - 180)


SIZE = (720, 640)
CHARACTER = [45, 45, 50, 45, 50, 45, 95, 120, 110, 95, 120, 110, 30, 13, 14, 13, 14, 30, 30]
MOVES = [
    STANDING,
    [10, 190, 20, 60, 160, 120, 95, 80, 100, 85, 100, 80, -80, -140, 170, -40, 10, 40, 150],
    [-5, 175, -60, -30, 240, 200, 105, 70, 120, 75, 110, 60, -100, -160, 190, -20, -10, 30, 110],
]


def driving_clip(lengths=HUMAN, moves=MOVES, step=(6.0, 0.0)) -> np.ndarray:
    return np.stack(
        [make_pose(lengths, angles, neck=(300 + i * step[0], 150 + i * step[1])) for i, angles in enumerate(moves)]
    )


def test_bones_take_character_lengths_and_driver_angles() -> None:
    reference = make_pose(CHARACTER, STANDING, neck=(320.0, 140.0))
    driving = driving_clip()
    out = retarget(reference, driving, ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    assert out.shape == driving.shape and out.dtype == np.float32
    ref_len, _ = bones(reference)
    for frame_in, frame_out in zip(driving, out, strict=True):
        out_len, out_angle = bones(frame_out)
        _, drv_angle = bones(frame_in)
        np.testing.assert_allclose(out_len, ref_len, rtol=0.01)
        assert angle_diff(out_angle, drv_angle).max() < 0.5


def test_full_body_pinned_at_the_feet_and_moves_with_the_driver() -> None:
    reference = make_pose(CHARACTER, STANDING, neck=(200.0, 100.0))
    out = retarget(reference, driving_clip(step=(10.0, 0.0)), ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    ref20, first = body20(reference), body20(out[0])
    assert max(first[10, 1], first[13, 1]) == pytest.approx(max(ref20[10, 1], ref20[13, 1]), abs=0.5)
    assert (first[8, 0] + first[11, 0]) / 2 == pytest.approx((ref20[8, 0] + ref20[11, 0]) / 2, abs=0.5)
    # The driver's neck moves 10 px per frame; the character is ~1.1x taller so it moves ~11 px.
    shift = body20(out[1])[1, 0] - first[1, 0]
    assert 10.5 < shift < 12.5


def test_half_body_reference_pinned_at_the_neck() -> None:
    reference = make_pose(CHARACTER, STANDING, neck=(250.0, 300.0))
    reference[11:23, 2] = 0.0  # no hips, legs or feet
    out = retarget(reference, driving_clip(), ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    np.testing.assert_allclose(body20(out[0])[1, :2], [250.0, 300.0], atol=0.5)


def test_partly_visible_reference_uses_fallbacks() -> None:
    reference = make_pose(CHARACTER, STANDING)
    reference[[5, 7, 9], 2] = 0.0  # left arm hidden (and so the neck, which needs both shoulders)
    reference[13:23, 2] = 0.0  # knees and below hidden
    driving = driving_clip()
    out = retarget(reference, driving, ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    assert np.isfinite(out).all()
    out_len, out_angle = bones(out[1])
    drv_len, drv_angle = bones(driving[1])
    # Left arm bones take the right arm's ratios (their symmetric twins).
    assert out_len[4] == pytest.approx(drv_len[4] * CHARACTER[2] / HUMAN[2], rel=0.01)
    assert out_len[5] == pytest.approx(drv_len[5] * CHARACTER[3] / HUMAN[3], rel=0.01)
    assert angle_diff(out_angle, drv_angle).max() < 0.5


def test_measured_reference_keeps_partial_body_in_place() -> None:
    # Only a head and shoulders: ratios fall back to the shoulders and nothing crashes.
    reference = make_pose(CHARACTER, STANDING)
    reference[7:23, 2] = 0.0
    out = retarget(reference, driving_clip(), ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    out_len, _ = bones(out[0])
    shoulder_ratio = CHARACTER[0] / HUMAN[0]
    assert out_len[7] == pytest.approx(HUMAN[7] * shoulder_ratio, rel=0.01)


def test_side_view_shoulders_rejected_as_foreshortened() -> None:
    reference = make_pose(CHARACTER, STANDING)
    side = make_pose([6, 6, *CHARACTER[2:]], STANDING)  # shoulders seen edge-on
    out_front = retarget(reference, driving_clip(), ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    out_side = retarget(side, driving_clip(), ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    front_len, _ = bones(out_front[0])
    side_len, _ = bones(out_side[0])
    # Without rejection the shoulders would shrink to 6 px; instead they follow the body scale.
    assert side_len[0] > 0.7 * front_len[0]
    np.testing.assert_allclose(side_len[2:12], front_len[2:12], rtol=0.01)


def test_foreshortened_first_frame_does_not_set_the_ratio() -> None:
    reference = make_pose(CHARACTER, STANDING)
    short_arm = list(HUMAN)
    short_arm[2] = short_arm[4] = 20  # upper arms pointing at the camera in frame 0
    frames = [make_pose(short_arm, MOVES[0])] + [make_pose(HUMAN, MOVES[i % 3]) for i in range(1, 12)]
    out = retarget(reference, np.stack(frames), ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    out_len, _ = bones(out[5])
    assert out_len[2] == pytest.approx(CHARACTER[2], rel=0.01)


def test_reference_letterboxed_into_output_size() -> None:
    reference = make_pose(CHARACTER, STANDING)
    ref_size, out_size = (720, 640), (360, 640)  # portrait character into a landscape output
    out = retarget(reference, driving_clip(), ref_size=ref_size, drive_size=SIZE, out_size=out_size)
    scale, _, _ = letterbox(ref_size, out_size)
    out_len, _ = bones(out[0])
    np.testing.assert_allclose(out_len, np.array(CHARACTER) * scale, rtol=0.01)
    mapped = map_points(reference, ref_size, out_size)
    assert max(body20(out[0])[10, 1], body20(out[0])[13, 1]) == pytest.approx(
        max(mapped[16, 1], mapped[15, 1]), abs=0.5
    )


def test_hands_scaled_and_rooted_at_new_wrists() -> None:
    reference = make_pose(CHARACTER, STANDING, palm=24.0)
    driving = driving_clip()
    out = retarget(reference, driving, ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    for t in range(len(out)):
        np.testing.assert_allclose(out[t, LEFT_HAND.start, :2], out[t, 9, :2], atol=1e-3)
        np.testing.assert_allclose(out[t, RIGHT_HAND.start, :2], out[t, 10, :2], atol=1e-3)
        out_span = np.linalg.norm(out[t, LEFT_HAND.start + 9, :2] - out[t, LEFT_HAND.start, :2])
        drv_span = np.linalg.norm(driving[t, LEFT_HAND.start + 9, :2] - driving[t, LEFT_HAND.start, :2])
        assert out_span == pytest.approx(2 * drv_span, rel=0.01)


def test_hand_pairing_compares_both_assignments() -> None:
    """The official test measured the right-hand distance from the left hand's root.

    Here the right hand's root is a little nearer the left wrist than the right wrist, but
    the left hand sits right on the left wrist: the labels are correct and must be kept
    (the official comparison would swap them).
    """
    reference = make_pose(CHARACTER, STANDING)
    frame = make_pose(HUMAN, MOVES[0])
    r_wrist, l_wrist = frame[10, :2].copy(), frame[9, :2].copy()
    right_root = r_wrist + 0.55 * (l_wrist - r_wrist)
    frame[RIGHT_HAND, :2] += right_root - frame[RIGHT_HAND.start, :2]
    frame[LEFT_HAND, :2] += l_wrist + np.array([1.0, 0.0]) - frame[LEFT_HAND.start, :2]
    out = retarget(reference, frame[None], ref_size=SIZE, drive_size=SIZE, out_size=SIZE)[0]
    np.testing.assert_allclose(out[RIGHT_HAND.start, :2], out[10, :2], atol=1e-3)
    np.testing.assert_allclose(out[LEFT_HAND.start, :2], out[9, :2], atol=1e-3)
    # Genuinely swapped labels (each hand on the other wrist) are put back.
    swapped = make_pose(HUMAN, MOVES[0])
    swapped[LEFT_HAND], swapped[RIGHT_HAND] = swapped[RIGHT_HAND].copy(), swapped[LEFT_HAND].copy()
    out = retarget(reference, swapped[None], ref_size=SIZE, drive_size=SIZE, out_size=SIZE)[0]
    np.testing.assert_allclose(out[LEFT_HAND.start, :2], out[9, :2], atol=1e-3)


def test_face_moves_and_scales_with_the_head() -> None:
    reference = make_pose(CHARACTER, STANDING)
    driving = driving_clip()
    out = retarget(reference, driving, ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    head_ratio = CHARACTER[13] / HUMAN[13]
    for t in range(len(out)):
        np.testing.assert_allclose(
            out[t, FACE, :2] - out[t, 0, :2],
            (driving[t, FACE, :2] - driving[t, 0, :2]) * head_ratio,
            atol=1e-3,
        )


def test_low_score_points_keep_their_score_and_are_not_rebuilt() -> None:
    reference = make_pose(CHARACTER, STANDING)
    driving = driving_clip()
    driving[1, 8, 2] = 0.1  # right elbow lost in one frame
    out = retarget(reference, driving, ref_size=SIZE, drive_size=SIZE, out_size=SIZE)
    assert out[1, 8, 2] == pytest.approx(0.1)
    # The wrist is still placed from the shoulder, keeping the shoulder→wrist direction.
    vec_out = out[1, 10, :2] - out[1, 6, :2]
    vec_drv = driving[1, 10, :2] - driving[1, 6, :2]
    assert angle_diff(np.degrees(np.arctan2(*vec_out[::-1])), np.degrees(np.arctan2(*vec_drv[::-1]))) < 0.5


def test_reference_without_bones_suggests_no_retarget() -> None:
    reference = make_pose(CHARACTER, STANDING)
    reference[:, 2] = 0.0
    reference[0, 2] = 1.0  # a lone nose
    with pytest.raises(WanimateError, match="--no-retarget"):
        retarget(reference, driving_clip(), ref_size=SIZE, drive_size=SIZE, out_size=SIZE)


def test_empty_driver_is_only_letterboxed() -> None:
    reference = make_pose(CHARACTER, STANDING)
    driving = np.zeros((4, 133, 3), np.float32)
    driving[:, :, 0] = np.nan
    out = retarget(reference, driving, ref_size=SIZE, drive_size=(360, 640), out_size=SIZE)
    assert out.shape == (4, 133, 3) and np.isfinite(out).all() and (out[..., 2] == 0).all()
