"""Each eval metric on synthetic input with a known answer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from wanimate.errors import WanimateError
from wanimate.evaluate.expression import PNP_MODEL, PNP_POINTS, correlation_and_lag, head_angles
from wanimate.evaluate.fvd import frechet_distance
from wanimate.evaluate.inputs import plan_boundaries
from wanimate.evaluate.motion import MotionFidelity
from wanimate.evaluate.reference import PSNR_CAP, psnr, ssim
from wanimate.evaluate.temporal import Temporal, lab_stats
from wanimate.preprocess import keypoints as K


def _skeleton() -> np.ndarray:
    """17 body points spread over a 100x100 px box, all confident."""
    kp = K.empty_pose()
    rng = np.random.default_rng(0)
    kp[K.BODY, :2] = rng.uniform(50, 150, (17, 2))
    kp[0, :2], kp[1, :2] = (50, 50), (150, 150)  # the box is exactly 100 px on each side
    kp[K.BODY, 2] = 1.0
    return kp


@pytest.mark.parametrize(("shift", "pck05", "pck10"), [(3.0, 1.0, 1.0), (8.0, 0.0, 1.0), (12.0, 0.0, 0.0)])
def test_shifted_skeleton_gives_the_expected_error(shift, pck05, pck10):
    given = _skeleton()
    found = given.copy()
    found[:, 0] += shift
    motion = MotionFidelity()
    motion.add(0, found, given)
    motion.add(1, None, given)  # the character was not found in frame 1
    result = motion.result()
    assert result["per_frame_error"][0] == pytest.approx(shift / 100)
    assert result["per_frame_error"][1] is None
    assert result["not_found_frames"] == [1]
    summary = result["summary"]
    assert summary["body_error"] == pytest.approx(shift / 100)
    # Frame 1's points were given but not found: misses for PCK.
    assert summary["body_pck@0.05"] == pytest.approx(pck05 / 2)
    assert summary["body_pck@0.1"] == pytest.approx(pck10 / 2)
    assert summary["hands_pck@0.1"] is None  # no hand was given


def test_correlation_and_lag_find_a_delayed_copy():
    t = np.arange(120, dtype=float)
    driver = np.sin(t / 6)
    output = 0.4 * np.roll(driver, 3) + 0.1  # 3 frames late, smaller range, offset
    output[:3] = np.nan
    r, lag = correlation_and_lag(driver, output)
    assert lag == 3
    assert r == pytest.approx(1.0, abs=1e-9)
    assert correlation_and_lag(driver, np.full(120, 0.2)) == (None, 0)  # a still output has no correlation


@pytest.mark.parametrize("yaw", [-25.0, 0.0, 20.0])
def test_head_angles_recover_a_known_rotation(yaw):
    size = (480, 640)
    focal = 640.0
    camera = np.array([[focal, 0, 320], [0, focal, 240], [0, 0, 1]])
    rvec = cv2.Rodrigues(cv2.RQDecomp3x3(np.eye(3))[1] @ _rotation_y(np.deg2rad(yaw)))[0]
    projected, _ = cv2.projectPoints(PNP_MODEL, rvec, np.array([0.0, 0.0, 3000.0]), camera, None)
    kp = K.empty_pose()
    kp[list(PNP_POINTS), :2] = projected.reshape(-1, 2)
    got_yaw, pitch, roll = head_angles(kp, size)
    assert got_yaw == pytest.approx(yaw, abs=0.5)
    assert pitch == pytest.approx(0.0, abs=0.5)
    assert roll == pytest.approx(0.0, abs=0.5)


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _texture(seed: int = 0, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 220, (size // 8, size // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC), (5, 5), 0)


def test_injected_colour_ramp_gives_the_expected_drift():
    fps = 10
    temporal = Temporal(float(fps), boundaries=[15])
    values = [100 + 2 * t for t in range(30)]  # grey rising 2 levels a frame for 3 seconds
    for v in values:
        temporal.add(np.full((32, 32, 3), v, np.uint8))
    result = temporal.result()

    def mean_l(frames):
        return np.mean([lab_stats(np.full((1, 1, 3), v, np.uint8))[0] for v in frames])

    expected = [mean_l(values[k * fps : (k + 1) * fps]) - mean_l(values[:fps]) for k in range(3)]
    assert result["per_second"]["delta_e"] == pytest.approx(expected, abs=1e-3)
    assert result["summary"]["drift_delta_e_last"] == pytest.approx(expected[-1], abs=1e-3)
    assert result["per_segment"]["delta_e"][1] == pytest.approx(mean_l(values[15:]) - mean_l(values[:15]), abs=1e-3)
    slope = np.polyfit(np.arange(3), expected, 1)[0]  # ΔE per second; L is not linear in grey levels
    assert result["summary"]["drift_delta_e_per_10s"] == pytest.approx(10 * slope, rel=1e-3)


def test_flicker_is_brightness_change_beyond_motion():
    base = _texture()
    moving, flashing = Temporal(30.0), Temporal(30.0)
    for t in range(8):
        moving.add(np.roll(base, 2 * t, axis=1))  # motion only
        flashing.add(np.clip(base.astype(int) + (6 if t % 2 else 0), 0, 255).astype(np.uint8))
    assert moving.result()["summary"]["flicker_mean"] < 1.5
    assert flashing.result()["summary"]["flicker_mean"] == pytest.approx(6, abs=1.0)


def test_duplicated_frame_at_a_seam_is_a_seam_jump():
    base = _texture(1, 128)
    frames = [np.roll(base, 3 * t, axis=1) for t in range(40)]
    frames.insert(20, frames[19].copy())  # the overlap frame repeated at the seam of frame 20
    temporal = Temporal(30.0, boundaries=[10, 20, 30])
    for frame in frames:
        temporal.add(frame)
    seams = {s["frame"]: s["jump"] for s in temporal.result()["seams"]}
    assert seams[20] == pytest.approx(1.0, abs=0.2)  # the difference drops to 0: a full stall
    assert seams[10] < 0.25
    assert seams[30] < 0.25


def test_plan_boundaries_follow_the_segment_plan():
    # 77-frame segments with 5 overlap: new segments start at output frames 77, 149, 221.
    assert plan_boundaries(230, 77, 5) == [77, 149, 221]
    with pytest.raises(WanimateError, match="must exceed"):
        plan_boundaries(100, 5, 5)


def test_ssim_and_psnr_known_values():
    a = np.clip(_texture(2), 0, 240)
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a) == PSNR_CAP
    b = (a.astype(int) + 10).astype(np.uint8)  # no value wraps past 255
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    assert ssim(a, np.random.default_rng(0).integers(0, 256, a.shape, dtype=np.uint8)) < 0.2


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 8))
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    shift = np.arange(8, dtype=float)
    assert frechet_distance(feats, feats + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
