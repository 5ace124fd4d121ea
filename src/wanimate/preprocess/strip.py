"""The ``--strip`` video: every material side by side, to check before spending GPU time.

A bad track, a skeleton that drifts off the body, a face crop on the wrong person or
a mask that eats the background are all obvious in one glance at this strip, and all
expensive to discover after generation. ``run --compare`` lays out its comparison the same way.
"""

from __future__ import annotations

import cv2
import numpy as np

ROW_HEIGHT = 320
_LABEL_HEIGHT = 22


def _tile(image: np.ndarray, label: str, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    width = max(2, round(w * height / h))
    tile = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
    if tile.ndim == 2:
        tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2RGB)
    out = np.zeros((height + _LABEL_HEIGHT, width, 3), np.uint8)
    out[_LABEL_HEIGHT:] = tile
    cv2.putText(out, label, (4, _LABEL_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def compose_strip(tiles: list[tuple[str, np.ndarray]], height: int = ROW_HEIGHT) -> np.ndarray:
    """One row of labelled tiles, each scaled to ``height`` with its aspect kept, 2 px apart."""
    parts: list[np.ndarray] = []
    for index, (label, image) in enumerate(tiles):
        if index:
            parts.append(np.zeros((height + _LABEL_HEIGHT, 2, 3), np.uint8))
        parts.append(_tile(image, label, height))
    return np.concatenate(parts, axis=1)
