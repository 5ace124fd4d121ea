"""Cutting the character out of its image: a soft matte of the person the skeleton belongs to."""

from __future__ import annotations

import cv2
import numpy as np


def segment_person(image: np.ndarray, keypoints: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the person ``keypoints`` describe (every person found without them).

    Uses preprocessing's :class:`~wanimate.preprocess.masks.PersonSegmenter`, so the preview
    cuts characters out exactly as replace mode cuts performers out, and gains SAM2 when
    preprocessing does.
    """
    from wanimate.preprocess.masks import PersonSegmenter

    with PersonSegmenter(backend="auto") as segmenter:
        return segmenter.segment(np.ascontiguousarray(image), keypoints, None)


def character_matte(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Soft alpha (float32, 0..1) of the character: its segment with a feathered edge.

    The segmenter's hard, stair-stepped edge is pulled in by a pixel (its outermost ring is
    usually the old background) and becomes a ramp about three pixels wide, which is what
    lets the warped character sit in a new background without a halo or a cut-out line.
    """
    hard = segment_person(image, keypoints).astype(np.uint8)
    inner = cv2.erode(hard, np.ones((3, 3), np.uint8)).astype(np.float32)
    return cv2.GaussianBlur(inner, (7, 7), 1.2)
