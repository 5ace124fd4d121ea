"""Optional colour correction across segments: each new segment's Lab statistics toward the first's.

Every segment is a fresh denoise conditioned on the previous segment's last frames, so small
colour shifts compound into the drift users see after 20-30 s. Matching the mean and spread
of each CIE Lab channel of a new segment to the first segment's (Reinhard-style transfer,
blended by ``strength``) removes the compounding part; the corrected frames also become the
next segment's conditioning. Off by default (docs/eval.md shows the numbers).

The first segment's statistics are taken from its frames as saved (uint8), so a resumed run
recomputes them exactly from the work folder.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def lab_stats(frames: np.ndarray) -> np.ndarray:
    """(6,) Lab mean then standard deviation of uint8 RGB frames ``(T, H, W, 3)``."""
    lab = np.concatenate([cv2.cvtColor(f.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3) for f in frames])
    return np.concatenate([lab.mean(0), lab.std(0)]).astype(np.float64)


def match_segment(decoded: torch.Tensor, reference: np.ndarray, strength: float) -> torch.Tensor:
    """``decoded`` (1, 3, T, H, W) in [-1, 1] with its Lab statistics moved ``strength`` of the way to ``reference``."""
    if strength <= 0:
        return decoded
    rgb = ((decoded[0].permute(1, 2, 3, 0).float().cpu().numpy() + 1) / 2).clip(0, 1).astype(np.float32)
    lab = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2Lab) for f in rgb])
    flat = lab.reshape(-1, 3)
    mean, std = flat.mean(0), flat.std(0)
    target = (lab - mean) / np.maximum(std, 1e-6) * reference[3:] + reference[:3]
    lab = (lab + strength * (target - lab)).astype(np.float32)
    out = np.stack([cv2.cvtColor(f, cv2.COLOR_Lab2RGB) for f in lab]).clip(0, 1)
    tensor = torch.from_numpy(out * 2 - 1).permute(3, 0, 1, 2)[None]
    return tensor.to(device=decoded.device, dtype=decoded.dtype)
