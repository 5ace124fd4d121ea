"""Skeletons as MultiAnimate saw them in training: UniAnimate-DiT's DWPose drawing, every person on one canvas.

MultiAnimate was trained on pose images rendered by ``prepare_training_data.py`` of UniAnimate-DiT
(``draw_body_and_foot`` + ``draw_handpose``, no face). That drawing differs from Wan-Animate's
(:mod:`wanimate.preprocess.skeleton`) in what changes pixels:

- fixed widths: limb ellipses 4 px half-thick, joints radius 4, hand lines 2 px, hand joints radius 4;
- keypoints count when their score exceeds 0.3 (not 0.5);
- the two toe limbs' colours: (170, 255, 255) and (255, 255, 0);
- every person is drawn on the same canvas (limbs of all, then the 60% dimming, then all joints);
- the canvas is built with OpenCV colour triples and saved with ``cv2.imencode``, i.e. as BGR, and the
  training loader reads it with PIL as RGB: every colour reaches the model with its channels
  reversed. This module returns RGB exactly as the model saw it.

The limb order is the same OpenPose-18 + toes list as Wan-Animate's (:data:`skeleton.LIMBS`).
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from wanimate.preprocess.keypoints import LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND, body20
from wanimate.preprocess.skeleton import BODY_COLORS, HAND_EDGES, LIMBS

# draw_body_and_foot's 20 colours as the OpenCV code wrote them (BGR in the saved JPEG).
_BGR_COLORS = (*BODY_COLORS[:18], (170, 255, 255), (255, 255, 0))
STICK = 4
JOINT_RADIUS = 4
HAND_THICKNESS = 2
THRESHOLD = 0.3
_EPS = 0.01  # draw_handpose skips points whose integer pixel coordinates are not above this (x = 0 or y = 0)


def _rgb(bgr: tuple[float, float, float]) -> tuple[float, float, float]:
    return (bgr[2], bgr[1], bgr[0])


def draw_people(people: np.ndarray, height: int, width: int) -> np.ndarray:
    """Render ``(N, 133, 3)`` poses (pixels, scores) on one black ``(height, width, 3)`` RGB canvas."""
    people = np.asarray(people, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    people = np.where(np.isfinite(people).all(axis=2, keepdims=True), people, 0.0)
    canvas = np.zeros((height, width, 3), np.uint8)
    bodies = [body20(kp) for kp in people]
    for index, (a, b) in enumerate(LIMBS):
        for body in bodies:
            (x1, y1, s1), (x2, y2, s2) = body[a], body[b]
            if s1 <= THRESHOLD or s2 <= THRESHOLD:
                continue
            length = math.hypot(x1 - x2, y1 - y2)
            angle = math.degrees(math.atan2(y1 - y2, x1 - x2))
            centre = (int((x1 + x2) / 2), int((y1 + y2) / 2))
            polygon = cv2.ellipse2Poly(centre, (int(length / 2), STICK), int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, _rgb(_BGR_COLORS[index]))
    canvas = (canvas * 0.6).astype(np.uint8)
    for joint in range(20):
        for body in bodies:
            x, y, score = body[joint]
            if score > THRESHOLD:
                cv2.circle(canvas, (int(x), int(y)), JOINT_RADIUS, _rgb(_BGR_COLORS[joint]), thickness=-1)
    for kp in people:
        for hand in (kp[LEFT_HAND], kp[RIGHT_HAND]):
            _draw_hand(canvas, hand)
    return canvas


def _draw_hand(canvas: np.ndarray, hand: np.ndarray) -> None:
    def usable(point: np.ndarray) -> bool:
        return point[2] >= THRESHOLD and int(point[0]) > _EPS and int(point[1]) > _EPS

    for index, (a, b) in enumerate(HAND_EDGES):
        if usable(hand[a]) and usable(hand[b]):
            r, g, b_ = colorsys.hsv_to_rgb(index / len(HAND_EDGES), 1.0, 1.0)
            color = _rgb((r * 255.0, g * 255.0, b_ * 255.0))
            p1 = (int(hand[a, 0]), int(hand[a, 1]))
            p2 = (int(hand[b, 0]), int(hand[b, 1]))
            cv2.line(canvas, p1, p2, color, thickness=HAND_THICKNESS)
    for point in hand:
        if usable(point):
            cv2.circle(canvas, (int(point[0]), int(point[1])), JOINT_RADIUS, _rgb((0, 0, 255)), thickness=-1)
