"""The identifier assigner: per-character masks become the one-hot label map the identifier adapter reads.

Character i (in the materials' order, from 1) gets label i, the background 0, and where masks
overlap the later character wins, as ``generate_label_map`` in the reference. The map has
``max_p + 1`` channels whatever the number of characters: unused identities stay empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wanimate.errors import WanimateError

if TYPE_CHECKING:
    import torch

LABEL_THRESHOLD = 127.5  # not the materials' MASK_THRESHOLD: the reference binarises (mask > 127.5) on any channel


def binarize(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` uint8 → ``(H, W)`` bool: foreground where any channel exceeds 127.5."""
    over = mask > LABEL_THRESHOLD
    return over.any(axis=-1) if over.ndim == 3 else over


def label_indices(masks: list[np.ndarray]) -> np.ndarray:
    """``(T, H, W)`` uint8 labels from N binarised ``(T, H, W)`` masks: 0 background, i+1 for mask i, later wins."""
    if not masks:
        raise WanimateError("at least one character mask is needed")
    labels = np.zeros(masks[0].shape, np.uint8)
    for i, mask in enumerate(masks):
        labels[mask] = i + 1
    return labels


def one_hot_labels(labels: np.ndarray, num_classes: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``(T, H, W)`` labels → ``(1, num_classes, T, H, W)`` one-hot (0/1, not scaled) in ``dtype`` (float32).

    Built one class at a time: at 832x480x81 an int64 one-hot of 8 classes would take 2 GB.
    """
    import torch

    if int(labels.max(initial=0)) >= num_classes:
        raise WanimateError(f"label {int(labels.max())} needs more than {num_classes} label channels")
    index = torch.from_numpy(labels)
    out = torch.empty((1, num_classes, *labels.shape), dtype=dtype or torch.float32)
    for c in range(num_classes):
        out[0, c] = index == c
    return out
