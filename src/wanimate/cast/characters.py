"""The cast's character images: each read, its figure found and cut out, before any video is touched.

A character image is read like the one-character path reads it (orientation, transparency), its
figure found by the pose backend (the largest confident person, as for one character) and cut out
with the same person segmenter the preview uses (MediaPipe's selfie segmentation, offline). The
cut-out is what the composed reference places and what the preview rigs; the keypoints are what
each performer's skeleton is retargeted to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanimate.errors import WanimateError
from wanimate.preprocess.keypoints import body20

MIN_BODY_POINTS = 4  # confident body points a figure needs (shoulders and a head or hips at least)
MIN_MATTE_SHARE = 0.002  # of the image a cut-out must cover to be a figure


@dataclass(frozen=True)
class CastCharacter:
    """A character image with its figure: pixels, soft matte and pose, all in the image's own pixels."""

    image: Path
    pixels: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray  # (H, W) float32 0..1
    keypoints: np.ndarray  # (133, 3)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The figure's extent (x0, y0, x1, y1) in image pixels: where its matte is solid."""
        ys, xs = np.nonzero(self.alpha > 0.5)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def load_cast_characters(images: list[Path], *, backend: str = "mediapipe") -> list[CastCharacter]:
    """Read and cut out every image; the first without a figure stops with one line naming it.

    The figure is found exactly as the one-character path finds the character (preprocessing's
    reference pose: a fresh still-image detector per image, the largest confident person).
    """
    from wanimate.native_logs import quiet_native_logs
    from wanimate.preprocess.pipeline import _reference_pose
    from wanimate.preprocess.reference import load_character
    from wanimate.preprocess.settings import PreprocessSettings
    from wanimate.preview.cutout import character_matte

    settings = PreprocessSettings(pose_backend=backend, retarget=False)  # no figure: an empty pose, refused below
    out = []
    for image in images:
        pixels = load_character(image).pixels
        with quiet_native_logs():  # MediaPipe's graphs log to fd 2 as they start
            keypoints = np.asarray(_reference_pose(pixels, settings, image), np.float32)
            confident = int((body20(keypoints)[:, 2] >= 0.5).sum())
            alpha = character_matte(pixels, keypoints) if confident >= MIN_BODY_POINTS else None
        if alpha is None or (alpha > 0.5).mean() < MIN_MATTE_SHARE:
            raise WanimateError(
                f"no figure found in the cast image {image}; use an image that shows the character's body "
                "(head, shoulders and more)"
            )
        out.append(CastCharacter(image, pixels, alpha.astype(np.float32), keypoints))
    return out
