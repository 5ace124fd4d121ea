"""The reference frame MultiAnimate needs, composed from separate character images.

MultiAnimate animates the characters of one reference frame and binds each to the performer whose
first-frame mask lies over it, so the frame must show every character where its performer stands.
Each character is scaled and moved by the similarity (no rotation) that best lays its body points
over its performer's in their first frame (the box when they share fewer than two points), then
drawn back to front by the performers' depth cue on a background: the first character image's own
scene with its figure filled in, a given image (cover-fitted), or a neutral plate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wanimate.cast.characters import CastCharacter
from wanimate.errors import WanimateError
from wanimate.preprocess.keypoints import body20

NEUTRAL = (118, 118, 112)  # a soft grey: neither the letterbox black nor a colour the model would read as scenery
POINT_SCORE = 0.5
BACKGROUNDS = ("image", "neutral")  # or a path to an image


@dataclass(frozen=True)
class Placement:
    """Where a character lands at the output size: ``image_xy * scale + offset``."""

    scale: float
    offset: tuple[float, float]

    def keypoints(self, kp: np.ndarray) -> np.ndarray:
        out = np.array(kp, np.float32, copy=True)
        out[..., 0] = out[..., 0] * self.scale + self.offset[0]
        out[..., 1] = out[..., 1] * self.scale + self.offset[1]
        return out


@dataclass(frozen=True)
class Layer:
    """One placed character at the output size: its pixels, soft alpha and pose."""

    rgb: np.ndarray  # (H, W, 3) uint8, black outside the figure
    alpha: np.ndarray  # (H, W) float32
    keypoints: np.ndarray  # (133, 3) output pixels


def place(character: CastCharacter, performer_kp: np.ndarray, performer_box: np.ndarray) -> Placement:
    """The similarity that lays the character over its performer (both body20 points confident, else the box)."""
    mine, theirs = body20(character.keypoints), body20(performer_kp)
    common = (mine[:, 2] >= POINT_SCORE) & (theirs[:, 2] >= POINT_SCORE)
    if common.sum() >= 2:
        a, b = mine[common, :2], theirs[common, :2]
        ca, cb = a.mean(axis=0), b.mean(axis=0)
        spread_a = float(np.sqrt(((a - ca) ** 2).sum(axis=1).mean()))
        spread_b = float(np.sqrt(((b - cb) ** 2).sum(axis=1).mean()))
        if spread_a > 1e-3 and spread_b > 1e-3:
            scale = spread_b / spread_a
            return Placement(scale, (float(cb[0] - ca[0] * scale), float(cb[1] - ca[1] * scale)))
    x0, y0, x1, y1 = character.box
    px0, py0, px1, py1 = (float(v) for v in performer_box)
    scale = max(py1 - py0, 1.0) / max(y1 - y0, 1)
    return Placement(scale, ((px0 + px1) / 2 - (x0 + x1) / 2 * scale, py1 - y1 * scale))


def render_layer(character: CastCharacter, placement: Placement, size: tuple[int, int]) -> Layer:
    """The character warped into an (H, W) canvas; area-averaged when it shrinks, so no aliasing."""
    height, width = size
    matrix = np.array([[placement.scale, 0, placement.offset[0]], [0, placement.scale, placement.offset[1]]])
    flags = cv2.INTER_AREA if placement.scale < 1 else cv2.INTER_LINEAR
    alpha = cv2.warpAffine(character.alpha, matrix, (width, height), flags=flags, borderValue=0)
    premultiplied = character.pixels.astype(np.float32) * character.alpha[..., None]
    rgb = cv2.warpAffine(premultiplied, matrix, (width, height), flags=flags, borderValue=(0, 0, 0))
    rgb = np.where(alpha[..., None] > 1e-3, rgb / np.maximum(alpha[..., None], 1e-3), 0.0)
    keypoints = placement.keypoints(character.keypoints)
    return Layer(np.clip(rgb, 0, 255).astype(np.uint8), np.clip(alpha, 0, 1).astype(np.float32), keypoints)


def cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to cover (H, W) and crop the middle: a background fills the frame, nothing letterboxed."""
    height, width = size
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    flags = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (new_w, new_h), interpolation=flags)
    x0, y0 = (new_w - width) // 2, (new_h - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


def background_plate(background: str | Path, first: CastCharacter, size: tuple[int, int]) -> np.ndarray:
    """``image``: the first character's own picture with its figure filled in; ``neutral``; or an image file."""
    if str(background) == "neutral":
        return np.full((*size, 3), NEUTRAL, np.uint8)
    if str(background) == "image":
        from wanimate.preview.inpaint import reference_plate

        return cover(reference_plate(first.pixels, first.alpha), size)
    path = Path(background)
    if not path.is_file():
        raise WanimateError(f"--background must be image, neutral or an image file; {path} not found")
    from wanimate.preprocess.reference import load_character

    return cover(load_character(path).pixels, size)


def compose_reference(plate: np.ndarray, layers: list[Layer], depths: list[float]) -> np.ndarray:
    """The layers over the plate, far (smaller depth cue) first."""
    canvas = plate.astype(np.float32)
    for index in np.argsort(depths, kind="stable"):
        layer = layers[index]
        a = layer.alpha[..., None]
        canvas = canvas * (1 - a) + layer.rgb.astype(np.float32) * a
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)
