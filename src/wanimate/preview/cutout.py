"""Cutting the character out of its image: a soft matte of the person the skeleton belongs to."""

from __future__ import annotations

import cv2
import numpy as np

from wanimate.preprocess import keypoints as K
from wanimate.preview.rig import MIN_SCORE


def segment_person(image: np.ndarray) -> np.ndarray:
    """Person probability per pixel, float32 in [0, 1] (mediapipe selfie segmentation, offline).

    The one place the preview touches a segmentation model, so a better segmenter can
    replace it without changing anything else.
    """
    import mediapipe as mp

    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        result = seg.process(np.ascontiguousarray(image))
    return np.clip(result.segmentation_mask.astype(np.float32), 0.0, 1.0)


def character_matte(image: np.ndarray, keypoints: np.ndarray, probability: np.ndarray | None = None) -> np.ndarray:
    """Soft alpha of the character: the segmented regions its skeleton touches, edges feathered.

    Other people or blobs the segmenter finds are dropped; a slight blur turns the
    segmenter's stair-stepped edge into a one-to-two pixel feather.
    """
    prob = segment_person(image) if probability is None else probability
    hard = (prob > 0.5).astype(np.uint8)
    count, labels = cv2.connectedComponents(hard)
    body = keypoints[K.BODY]
    h, w = hard.shape
    inside = [labels[int(np.clip(y, 0, h - 1)), int(np.clip(x, 0, w - 1))] for x, y, s in body if s >= MIN_SCORE]
    keep = {int(i) for i in inside if i > 0}
    if not keep and count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        keep = {int(np.argmax(sizes)) + 1}
    region = np.isin(labels, list(keep)).astype(np.uint8)
    region = cv2.dilate(region, np.ones((5, 5), np.uint8))
    alpha = np.clip((prob - 0.25) / 0.5, 0.0, 1.0) * region
    return cv2.GaussianBlur(alpha.astype(np.float32), (3, 3), 0)
