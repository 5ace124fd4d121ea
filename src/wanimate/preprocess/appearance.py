"""What a person looks like, for telling people apart when position alone cannot.

Someone who leaves the frame, or is hidden for a second or two, comes back somewhere else;
the tracker then asks "who is this?" by appearance. A person's look is summarised as two
hue-saturation histograms (upper and lower half of their silhouette, roughly clothes on top
and below) over their own pixels, normalised so that size does not matter. Brightness is
left out on purpose: the same coat in shade and in sun differs mostly in value.
"""

from __future__ import annotations

import cv2
import numpy as np

HUE_BINS, SAT_BINS = 12, 4
SIZE = HUE_BINS * SAT_BINS * 2 + 1  # two halves plus the share of grey (unsaturated) pixels
_MIN_PIXELS = 30


def describe(
    pixels: np.ndarray, mask: np.ndarray, split: int | None = None, bottom: int | None = None
) -> np.ndarray | None:
    """Appearance vector of the person whose ``mask`` (bool, same H x W) covers ``pixels`` (RGB uint8).

    The two parts are the rows above and below ``split`` (default: the middle of the mask), down
    to ``bottom`` (default: the mask's last row). A caller that knows where the shoulders are
    passes them: head and hair above, the upper body below, and nothing further down, where a
    segmenter may go on into whatever lies under someone seen from the chest up.
    """
    ys = np.flatnonzero(mask.any(axis=1))
    if mask.sum() < _MIN_PIXELS or len(ys) == 0:
        return None
    middle = (ys[0] + ys[-1]) // 2 if split is None else int(np.clip(split, ys[0], ys[-1]))
    last = ys[-1] + 1 if bottom is None else int(np.clip(bottom, middle + 1, ys[-1] + 1))
    hsv = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2HSV)
    parts = []
    grey = 0.0
    for top, bottom in ((ys[0], middle + 1), (middle + 1, last)):
        region = mask[top:bottom].astype(np.uint8)
        if region.sum() < _MIN_PIXELS // 2:
            parts.append(np.zeros(HUE_BINS * SAT_BINS, np.float32))
            continue
        hist = cv2.calcHist([hsv[top:bottom]], [0, 1], region, [HUE_BINS, SAT_BINS], [0, 180, 0, 256])
        hist = hist.ravel().astype(np.float32)
        parts.append(hist / max(hist.sum(), 1.0))
        grey += float(hist.reshape(HUE_BINS, SAT_BINS)[:, 0].sum() / max(hist.sum(), 1.0)) / 2
    return np.concatenate([*parts, [grey]]).astype(np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 for the same look, 1 for nothing in common: mean Hellinger distance of the two halves."""
    half = HUE_BINS * SAT_BINS
    total = 0.0
    for part in (slice(0, half), slice(half, 2 * half)):
        pa, pb = a[part], b[part]
        if pa.sum() == 0 or pb.sum() == 0:
            total += 0.5
            continue
        total += float(np.sqrt(max(0.0, 1.0 - np.sqrt(pa * pb).sum())))
    return total / 2


def likelihood(look: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """How typical each of ``pixels`` ((N, 3) RGB uint8) is of ``look``: its hue-saturation bin's share.

    Both parts of the look count (a pixel may be from the top or the bottom of the person);
    this is histogram back-projection, for giving a pixel two people both claim to one of them.
    """
    half = HUE_BINS * SAT_BINS
    model = (look[:half] + look[half : 2 * half]).reshape(HUE_BINS, SAT_BINS)
    model = model / max(float(model.sum()), 1e-6)
    hsv = cv2.cvtColor(np.ascontiguousarray(pixels, np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    hue = np.minimum(hsv[:, 0].astype(np.int64) * HUE_BINS // 180, HUE_BINS - 1)
    sat = np.minimum(hsv[:, 1].astype(np.int64) * SAT_BINS // 256, SAT_BINS - 1)
    return model[hue, sat]
