"""Match the character's light to the scene it is placed in (replace mode's relighting stand-in).

A full Reinhard transfer would repaint an orange suit in the wall's colours. The light of a
scene shows mostly in brightness and contrast and only a little in tint, so lightness moves
most of the way to the scene's statistics while the colour channels only shift a fraction of
the way: the character's own colours survive and it stops looking pasted on.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LIGHTNESS_STRENGTH = 0.6
TINT_STRENGTH = 0.2
SMOOTHING = 0.85  # weight of the previous frame's scene statistics: no flicker
RING_FRACTION = 0.06  # ring width as a fraction of the frame's longer side


@dataclass
class LabStats:
    mean: np.ndarray  # (3,)
    std: np.ndarray  # (3,)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2LAB)


def lab_stats(lab: np.ndarray, where: np.ndarray) -> LabStats | None:
    pixels = lab[where]
    if len(pixels) < 16:
        return None
    return LabStats(pixels.mean(axis=0), pixels.std(axis=0) + 1e-3)


def ring(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of the mask but outside it: the scene right around the performer."""
    k = 2 * width + 1
    return (cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)) > 0) & ~mask


class ColourMatcher:
    """Holds the character's Lab statistics and adapts them to each frame's surroundings."""

    def __init__(self, texture_rgb: np.ndarray, alpha: np.ndarray) -> None:
        self.lab = to_lab(texture_rgb)
        stats = lab_stats(self.lab, alpha > 0.5)
        self.character = stats or LabStats(np.array([50.0, 0.0, 0.0]), np.ones(3))
        self.scene: LabStats | None = None
        self._cached: tuple[np.ndarray, np.ndarray] | None = None  # (gain and shift, relit texture)

    def observe(self, frame: np.ndarray, performer: np.ndarray) -> None:
        """Update the scene statistics from the ring around the performer mask."""
        step = 4  # every fourth pixel each way is plenty for a mean and a spread
        width = max(1, round(RING_FRACTION * max(frame.shape[:2]) / step))
        around = ring(performer[::step, ::step], width)
        stats = lab_stats(to_lab(frame[::step, ::step]), around)
        if stats is None:
            return
        if self.scene is None:
            self.scene = stats
        else:
            self.scene = LabStats(
                SMOOTHING * self.scene.mean + (1 - SMOOTHING) * stats.mean,
                SMOOTHING * self.scene.std + (1 - SMOOTHING) * stats.std,
            )

    def apply(self) -> np.ndarray:
        """The character texture (RGB uint8) relit for the current scene statistics.

        The scene statistics drift slowly (they are smoothed), so the texture is converted
        back from Lab only when the correction moved by a visible amount (0.3 Lab units).
        """
        if self.scene is None:
            return self._relit(np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
        c, s = self.character, self.scene
        gain = np.array([1.0 + LIGHTNESS_STRENGTH * (s.std[0] / c.std[0] - 1.0), 1.0, 1.0])
        gain[0] = np.clip(gain[0], 0.5, 1.5)
        shift = np.array([LIGHTNESS_STRENGTH * (s.mean[0] - c.mean[0]), *(TINT_STRENGTH * (s.mean[1:] - c.mean[1:]))])
        return self._relit(np.concatenate([gain, shift]))

    def _relit(self, correction: np.ndarray) -> np.ndarray:
        """Texture for ``correction`` = (3 gains, 3 shifts), reusing the last one when close."""
        if self._cached is not None:
            change = np.abs(self._cached[0] - correction)
            if change[:3].max() < 0.003 and change[3:].max() < 0.3:
                return self._cached[1]
        c = self.character
        lab = (self.lab - c.mean) * correction[:3] + c.mean + correction[3:]
        self._cached = (correction, _to_rgb(lab.astype(np.float32)))
        return self._cached[1]


def _to_rgb(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
