"""Alpha compositing of the warped character over its background."""

from __future__ import annotations

import cv2
import numpy as np

from wanimate.preview.warp import Patch


def composite(background: np.ndarray, patch: Patch | None, *, in_place: bool = False) -> np.ndarray:
    """``over`` with a premultiplied foreground, on the patch's box only.

    OpenCV's saturating 8-bit arithmetic does it in two vectorised passes. The soft alpha
    edge comes from the segmentation matte carried through the warp, so the character
    blends into the plate without a cut-out fringe. ``in_place`` draws on ``background``
    itself (a decoded frame nobody else holds) instead of a copy (a plate reused every frame).
    """
    out = background if in_place else background.copy()
    if patch is None:
        return out
    h, w = patch.rgba.shape[:2]
    region = out[patch.y0 : patch.y0 + h, patch.x0 : patch.x0 + w]
    keep = cv2.cvtColor(255 - patch.rgba[..., 3], cv2.COLOR_GRAY2RGB)
    behind = cv2.multiply(region, keep, scale=1.0 / 255.0)
    region[:] = cv2.add(behind, np.ascontiguousarray(patch.rgba[..., :3]))
    return out
