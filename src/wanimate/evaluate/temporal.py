"""Temporal quality: colour drift, flicker and seam jumps.

- **Drift**: the mean and spread (standard deviation) of each CIE Lab channel, per second and
  per segment, against the first second (or segment); the headline number is the CIE76
  colour difference ΔE of the means (about 2.3 is a just-noticeable difference).
- **Flicker**: frame-to-frame change that motion does not explain. Each frame is warped onto
  the previous one with Farneback optical flow and the mean absolute grey-level difference
  (0-255) is taken over pixels whose forward and backward flows agree (occlusions excluded).
- **Seam jumps**: at each segment boundary, how far the plain frame difference across the
  boundary departs from the median difference of the frames around it, relative to that
  median: 0 means the seam is invisible, a repeated frame (motion stalls for a frame) gives 1,
  a colour or position jump gives more.

Frames are measured at most ``ANALYSIS_SIDE`` pixels on their longer side: drift and flicker
are properties of large areas, and flow at full 720p would dominate the evaluation's time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np

ANALYSIS_SIDE = 256
SEAM_WINDOW = 8
MIN_MOTION = 0.5  # grey levels: the floor of the local median, so a still clip does not divide by 0
FB_TOLERANCE = 1.0  # pixels of forward-backward flow disagreement still counted as consistent


def analysis_frame(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = ANALYSIS_SIDE / max(h, w)
    if scale >= 1:
        return frame
    return cv2.resize(frame, (max(round(w * scale), 1), max(round(h * scale), 1)), interpolation=cv2.INTER_AREA)


def lab_stats(frame: np.ndarray) -> np.ndarray:
    """(6,) mean L, a, b then their standard deviations (L in 0-100)."""
    lab = cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    return np.concatenate([lab.mean(0), lab.std(0)])


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def warped_residual(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean |previous - current warped onto previous| over flow-consistent pixels, grey levels."""
    forward = _flow(previous, current)  # previous(y, x) ~ current(y + fy, x + fx)
    backward = _flow(current, previous)
    h, w = previous.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + forward[..., 0], gy + forward[..., 1]
    warped = cv2.remap(current.astype(np.float32), mx, my, cv2.INTER_LINEAR)
    back = cv2.remap(backward, mx, my, cv2.INTER_LINEAR)
    consistent = np.linalg.norm(forward + back, axis=2) <= FB_TOLERANCE
    consistent &= (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    if not consistent.any():
        return float("nan")
    return float(np.abs(previous.astype(np.float32) - warped)[consistent].mean())


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a[:3] - b[:3]))


@dataclass
class Temporal:
    fps: float
    boundaries: list[int] = field(default_factory=list)  # first output frame of every segment after the first
    stats: list[np.ndarray] = field(default_factory=list)
    flicker: list[float | None] = field(default_factory=list)
    difference: list[float | None] = field(default_factory=list)
    _previous: np.ndarray | None = None

    def add(self, frame: np.ndarray) -> None:
        small = analysis_frame(frame)
        self.stats.append(lab_stats(small))
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        if self._previous is None:
            self.flicker.append(None)
            self.difference.append(None)
        else:
            residual = warped_residual(self._previous, grey)
            self.flicker.append(None if np.isnan(residual) else residual)
            self.difference.append(float(np.abs(grey.astype(np.float32) - self._previous).mean()))
        self._previous = grey

    def _groups(self, starts: list[int]) -> list[np.ndarray]:
        edges = [*starts, len(self.stats)]
        return [np.mean(self.stats[a:b], axis=0) for a, b in itertools.pairwise(edges) if b > a]

    def seams(self) -> list[dict]:
        diff = np.array([np.nan if d is None else d for d in self.difference])
        flick = np.array([np.nan if f is None else f for f in self.flicker])
        out = []
        for b in self.boundaries:
            if b < 1 or b >= len(diff):
                continue
            seam = [t for t in (b, b + 1) if t < len(diff)]
            around = [t for t in range(max(b - SEAM_WINDOW, 1), min(b + SEAM_WINDOW + 2, len(diff))) if t not in seam]
            local = float(np.nanmedian(diff[around])) if around else float("nan")
            local_flicker = float(np.nanmedian(flick[around])) if around else float("nan")
            floor = max(local, MIN_MOTION)
            jump = max(abs(float(diff[t]) - local) for t in seam) / floor if not np.isnan(local) else None
            seam_flicker = float(flick[b]) / max(local_flicker, MIN_MOTION) if not np.isnan(local_flicker) else None
            out.append({"frame": b, "jump": jump, "flicker_ratio": seam_flicker, "difference": float(diff[b])})
        return out

    def result(self) -> dict:
        per_second_starts = list(range(0, len(self.stats), max(round(self.fps), 1)))
        seconds = self._groups(per_second_starts)
        segments = self._groups([0, *self.boundaries]) if self.boundaries else []
        first = seconds[0] if seconds else np.zeros(6)
        drift = [delta_e(s, first) for s in seconds]
        spread = [float(np.abs(s[3:] - first[3:]).mean()) for s in seconds]
        segment_drift = [delta_e(s, segments[0]) for s in segments] if segments else []
        flicker = np.array([f for f in self.flicker if f is not None])
        seams = self.seams()
        jumps = [s["jump"] for s in seams if s["jump"] is not None]
        slope = None
        if len(drift) >= 2:
            slope = float(np.polyfit(np.arange(len(drift)), drift, 1)[0]) * 10  # ΔE per 10 s
        summary = {
            "drift_delta_e_max": max(drift) if drift else None,
            "drift_delta_e_last": drift[-1] if drift else None,
            "drift_delta_e_per_10s": slope,
            "spread_change_max": max(spread) if spread else None,
            "segment_drift_delta_e_max": max(segment_drift) if segment_drift else None,
            "flicker_mean": float(flicker.mean()) if flicker.size else None,
            "flicker_p95": float(np.percentile(flicker, 95)) if flicker.size else None,
            "seam_jump_max": max(jumps) if jumps else None,
            "seam_jump_mean": float(np.mean(jumps)) if jumps else None,
            "seams": len(seams),
        }
        return {
            "summary": summary,
            "per_second": {
                "delta_e": drift,
                "spread_change": spread,
                "lab_mean": [s[:3].round(4).tolist() for s in seconds],
                "lab_std": [s[3:].round(4).tolist() for s in seconds],
            },
            "per_segment": {"delta_e": segment_drift, "lab_mean": [s[:3].round(4).tolist() for s in segments]},
            "flicker": self.flicker,
            "seams": seams,
        }
