"""One-Euro smoothing: quiet when still, quick when moving, and never smearing across gaps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from wanimate.preprocess.keypoints import L_WRIST, NUM_KEYPOINTS
from wanimate.preprocess.smoothing import smooth_keypoints

FPS = 30.0


def track(frames: int, wrist: Callable[[int], tuple[float, float]], noise: float = 0.0) -> np.ndarray:
    """A still 200x300 px torso (diagonal 360 px) and a left wrist following ``wrist(t)``."""
    kp = np.zeros((frames, NUM_KEYPOINTS, 3), np.float32)
    kp[:, 5:7, :2] = [(200, 100), (400, 100)]
    kp[:, 11:13, :2] = [(200, 400), (400, 400)]
    kp[:, [5, 6, 11, 12], 2] = 0.9
    kp[:, L_WRIST, :2] = [wrist(t) for t in range(frames)]
    kp[:, L_WRIST, 2] = 0.8
    kp[:, L_WRIST, :2] += np.random.default_rng(0).normal(0, noise, (frames, 2))
    return kp


def test_jitter_on_a_still_point_is_cut_several_fold() -> None:
    raw = track(300, lambda t: (350.0, 200.0), noise=2.0)
    out = smooth_keypoints(raw, FPS)
    before = raw[30:, L_WRIST, :2].std(0)
    after = out[30:, L_WRIST, :2].std(0)
    assert (before / after).min() > 3.5
    np.testing.assert_array_equal(out[..., 2], raw[..., 2])


def test_fast_ramp_is_followed_with_bounded_lag() -> None:
    raw = track(120, lambda t: (200.0 + 10 * max(0, t - 30), 200.0))  # 300 px/s, ~1 person-size/s
    out = smooth_keypoints(raw, FPS)
    lag_frames = (raw[60:110, L_WRIST, 0] - out[60:110, L_WRIST, 0]) / 10
    assert 0 < lag_frames.mean() < 1.5


def test_step_settles_within_a_few_frames() -> None:
    raw = track(90, lambda t: (200.0 if t < 30 else 400.0, 200.0))
    out = smooth_keypoints(raw, FPS)
    err = np.abs(out[30:, L_WRIST, 0] - 400)
    assert err[4:].max() < 10  # within 5% of the jump after four frames


def test_missing_points_are_not_smeared_in() -> None:
    raw = track(60, lambda t: (250.0, 200.0) if t < 20 else (450.0, 320.0), noise=1.0)
    raw[20:30, L_WRIST] = 0  # gone for ten frames, then back somewhere else
    out = smooth_keypoints(raw, FPS)
    assert (out[20:30, L_WRIST] == 0).all()
    np.testing.assert_allclose(out[30, L_WRIST], raw[30, L_WRIST])  # restarts where it reappears
    assert np.abs(out[30:, L_WRIST, 0] - 450).max() < 5


def test_off_switch_and_bad_fps() -> None:
    raw = track(20, lambda t: (300.0, 200.0), noise=3.0)
    np.testing.assert_array_equal(smooth_keypoints(raw, FPS, enabled=False), raw)
    with pytest.raises(ValueError, match="fps"):
        smooth_keypoints(raw, 0.0)
