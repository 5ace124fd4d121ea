"""Draw one pose frame exactly as the official Wan-Animate skeleton video looks.

The model's pose branch was trained on videos drawn by the official ``draw_aapose_new``
(stick width "v2"), so every detail that changes pixels is kept: the 19 limbs of the
OpenPose-18 body plus two ankle→toe limbs as filled ellipses at 60% colour, full-colour
joint dots, HSV-rainbow hand lines with blue joint dots, and no face landmarks. The
official canvas is handed to moviepy as RGB, so the colour triples below are RGB values
as they appear in ``src_pose.mp4``.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterator

import cv2
import numpy as np

from wanimate.preprocess.keypoints import LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND, body20

# Limbs as (start, end) indices into ``body20``; same order as the official list, so limb i
# takes colour ``BODY_COLORS[i]``.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5),  # neck → shoulders
    (2, 3), (3, 4),  # right arm
    (5, 6), (6, 7),  # left arm
    (1, 8), (8, 9), (9, 10),  # right leg
    (1, 11), (11, 12), (12, 13),  # left leg
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),  # neck → nose → eyes → ears
    (13, 18), (10, 19),  # ankle → toe
)  # fmt: skip

# One colour per body20 joint; the limbs use the first 19 of them.
BODY_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
    (200, 200, 0), (100, 100, 0),
)  # fmt: skip

LIMB_INTENSITY = 0.6

# 21-point hand: wrist then four joints per finger, thumb first.
HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    (0 if j == 0 else 4 * f + j, 4 * f + j + 1) for f in range(5) for j in range(4)
)
HAND_JOINT_COLOR = (0, 0, 255)
# The official hand drawing skips points at the image's top or left edge (its "missing" marker).
_HAND_EDGE_EPS = 0.01


def limb_color(index: int) -> tuple[int, int, int]:
    """The 60%-intensity RGB colour limb ``index`` is filled with (truncated like the official)."""
    return tuple(int(c * LIMB_INTENSITY) for c in BODY_COLORS[index])  # type: ignore[return-value]


def hand_edge_color(index: int) -> tuple[float, float, float]:
    """HSV rainbow over the 20 hand edges, as float RGB in 0..255 (OpenCV rounds it when drawing)."""
    r, g, b = colorsys.hsv_to_rgb(index / len(HAND_EDGES), 1.0, 1.0)
    return (r * 255.0, g * 255.0, b * 255.0)


def stick_width(height: int, width: int) -> int:
    """Half-thickness of limb ellipses and radius of body joints ("v2" width: 2 at 720p)."""
    return max(int(min(height, width) / 200) - 1, 1)


def hand_thickness(height: int, width: int) -> int:
    """Hand line thickness and hand joint radius: half the body stick width, at least 1."""
    return max(stick_width(height, width) // 2, 1)


def draw_skeleton(kp: np.ndarray, height: int, width: int, *, threshold: float = 0.5) -> np.ndarray:
    """Render one ``(133, 3)`` pose on a black ``(height, width, 3)`` RGB canvas.

    Points scoring below ``threshold`` are skipped together with every limb or hand edge
    touching them, so a lost joint leaves a gap instead of a bone pointing to (0, 0).
    """
    if kp.shape != (NUM_KEYPOINTS, 3):
        raise ValueError(f"expected ({NUM_KEYPOINTS}, 3) keypoints, got {kp.shape}")
    canvas = np.zeros((height, width, 3), np.uint8)
    kp = np.where(np.isfinite(kp).all(axis=1, keepdims=True), kp, 0.0)  # a NaN point counts as missing
    body = body20(kp)
    sw = stick_width(height, width)
    _draw_limbs(canvas, body, sw, threshold)
    for (x, y, score), color in zip(body, BODY_COLORS, strict=True):
        if score >= threshold:
            cv2.circle(canvas, (int(x), int(y)), sw, color, thickness=-1)
    thickness = hand_thickness(height, width)
    for hand in (kp[LEFT_HAND], kp[RIGHT_HAND]):
        _draw_hand(canvas, hand, thickness, threshold)
    return canvas


def _draw_limbs(canvas: np.ndarray, body: np.ndarray, sw: int, threshold: float) -> None:
    for index, (a, b) in enumerate(LIMBS):
        (x1, y1, s1), (x2, y2, s2) = body[a], body[b]
        if s1 < threshold or s2 < threshold:
            continue
        length = math.hypot(x1 - x2, y1 - y2)
        angle = math.degrees(math.atan2(y1 - y2, x1 - x2))
        centre = (int((x1 + x2) / 2), int((y1 + y2) / 2))
        polygon = cv2.ellipse2Poly(centre, (int(length / 2), sw), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, limb_color(index))


def _draw_hand(canvas: np.ndarray, hand: np.ndarray, thickness: int, threshold: float) -> None:
    def usable(point: np.ndarray) -> bool:
        return point[2] >= threshold and int(point[0]) > _HAND_EDGE_EPS and int(point[1]) > _HAND_EDGE_EPS

    for index, (a, b) in enumerate(HAND_EDGES):
        if usable(hand[a]) and usable(hand[b]):
            p1 = (int(hand[a, 0]), int(hand[a, 1]))
            p2 = (int(hand[b, 0]), int(hand[b, 1]))
            cv2.line(canvas, p1, p2, hand_edge_color(index), thickness=thickness)
    for point in hand:
        if usable(point):
            cv2.circle(canvas, (int(point[0]), int(point[1])), thickness, HAND_JOINT_COLOR, thickness=-1)


def draw_skeleton_video(
    keypoints: np.ndarray, height: int, width: int, *, threshold: float = 0.5
) -> Iterator[np.ndarray]:
    """Yield one drawn frame per pose of a ``(T, 133, 3)`` sequence (frames are never held together)."""
    for kp in keypoints:
        yield draw_skeleton(kp, height, width, threshold=threshold)
