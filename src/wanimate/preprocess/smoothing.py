"""One-Euro smoothing of keypoint tracks.

Per-frame pose estimates jitter by a few pixels, which the skeleton video turns into flicker the
model then animates. The One-Euro filter (Casiez et al., CHI 2012) is a low-pass filter whose
cutoff rises with speed: a still joint is smoothed hard, a fast one is followed with little lag.

Speeds are measured in *person sizes per second* (the clip's median box diagonal of the detected
body), so the defaults behave the same for a small figure in 480p and a close-up in 4K.
"""

from __future__ import annotations

import numpy as np

from wanimate.preprocess.keypoints import BODY, FEET

# Tuned on synthetic tracks at 30 fps (tests/test_smoothing.py): at rest the cutoff is 0.5 Hz,
# which cuts 2 px of per-frame jitter on a 360 px person about 4-5x; a joint moving at one
# person-size per second gets 0.5 + 3 = 3.5 Hz and trails a ramp by about one frame, and a
# sudden jump settles within two or three frames.
DEFAULT_MIN_CUTOFF = 0.5
DEFAULT_BETA = 3.0


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray:
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau * fps)


def person_scale(keypoints: np.ndarray) -> float:
    """Median over frames of the diagonal of the confident body points (pixels)."""
    diags = []
    for frame in keypoints:
        pts = np.concatenate([frame[BODY], frame[FEET]])
        pts = pts[pts[:, 2] > 0.3, :2]
        if len(pts) >= 2:
            diags.append(float(np.linalg.norm(pts.max(0) - pts.min(0))))
    return float(np.median(diags)) if diags and np.median(diags) > 1 else 1.0


def smooth_keypoints(
    keypoints: np.ndarray,
    fps: float,
    *,
    min_cutoff: float = DEFAULT_MIN_CUTOFF,
    beta: float = DEFAULT_BETA,
    d_cutoff: float = 1.0,
    enabled: bool = True,
) -> np.ndarray:
    """(T, 133, 3) -> (T, 133, 3): x and y filtered per point over time; scores unchanged.

    A missing point (score 0) stays as it is and restarts that point's filter, so a joint that
    reappears is not dragged in from where it was last seen.
    """
    keypoints = np.asarray(keypoints, np.float32)
    if not enabled or len(keypoints) < 2:
        return keypoints.copy()
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    scale = person_scale(keypoints)
    out = keypoints.copy()
    xy = keypoints[..., :2].astype(np.float64)
    valid = keypoints[..., 2] > 0
    prev = np.zeros(xy.shape[1:])
    prev_speed = np.zeros(xy.shape[1:])
    live = np.zeros(xy.shape[1], bool)
    a_d = _alpha(d_cutoff, fps)
    for t in range(len(xy)):
        ok = valid[t]
        fresh = ok & ~live
        prev[fresh] = xy[t, fresh]
        prev_speed[fresh] = 0.0
        speed = (xy[t] - prev) * fps / scale
        speed = a_d * speed + (1 - a_d) * prev_speed
        a = _alpha(min_cutoff + beta * np.abs(speed), fps)
        filtered = a * xy[t] + (1 - a) * prev
        prev = np.where(ok[:, None], filtered, prev)
        prev_speed = np.where(ok[:, None], speed, prev_speed)
        out[t, ok, :2] = filtered[ok]
        live = ok
    return out
