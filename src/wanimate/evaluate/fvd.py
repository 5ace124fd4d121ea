"""Fréchet Video Distance on Kinetics-400 I3D logits, the definition of Unterthiner et al.

Clips of ``CLIP_FRAMES`` frames (half-overlapping) are resized to 224x224 (bilinear, no crop),
scaled to [-1, 1], and mapped to the 400 pre-softmax logits of I3D; FVD is the Fréchet
distance between Gaussians fitted to the two sets of clip features. On one pair of videos
the sets are small (a 10 s clip at 30 fps gives 36 clips), so the covariance is of low rank
and the number is a paired, same-length comparison rather than the dataset-level FVD papers
report; the report says how many clips went in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

CLIP_FRAMES = 16
CLIP_STRIDE = 8
SIZE = 224


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` and ``b`` (N, D)."""
    import warnings

    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.cov(a, rowvar=False) if len(a) > 1 else np.zeros((a.shape[1], a.shape[1]))
    cov_b = np.cov(b, rowvar=False) if len(b) > 1 else np.zeros((b.shape[1], b.shape[1]))
    with warnings.catch_warnings():
        # A few clips give low-rank covariances: sqrtm warns, and its result is still the right one.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))
    return max(value, 0.0)


@dataclass
class ClipFeatures:
    """Collects frames, runs I3D on each full clip, keeps the 400-d logits."""

    model: torch.nn.Module
    features: list[np.ndarray] = field(default_factory=list)
    _window: list[torch.Tensor] = field(default_factory=list)

    def add(self, frame: np.ndarray) -> None:
        pixels = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
        pixels = F.interpolate(pixels, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
        self._window.append(pixels[0] / 127.5 - 1.0)
        if len(self._window) == CLIP_FRAMES:
            clip = torch.stack(self._window, dim=1)[None]  # (1, 3, T, H, W)
            with torch.no_grad():
                self.features.append(self.model(clip)[0].numpy().astype(np.float64))
            self._window = self._window[CLIP_STRIDE:]


def fvd(output: ClipFeatures, reference: ClipFeatures) -> dict:
    if not output.features or not reference.features:
        return {"fvd": None, "clips": 0, "note": f"FVD needs at least {CLIP_FRAMES} frames"}
    return {
        "fvd": frechet_distance(np.stack(output.features), np.stack(reference.features)),
        "clips": len(output.features),
    }
