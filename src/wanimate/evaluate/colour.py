"""Whether two regions have the same colours: hue-saturation histograms, correlated.

``wanimate eval`` scores identity with it (the character in the output against the character
image), and the preview renderer's tests check that relighting keeps the character's colours.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_CHROMA = 40  # saturation and value (0-255) below which a pixel's hue is noise


def hue_sat_histogram(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Normalised 2D hue-saturation histogram of the masked, visibly coloured pixels.

    Black, white and grey pixels are left out: their hue is arbitrary, and counting them
    would make any two mostly-grey regions (a dark helmet, a blacked-out performer) look
    alike. Lightness is ignored on purpose, so relighting does not count as a colour change.
    """
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    chromatic = mask & (hsv[..., 1] >= MIN_CHROMA) & (hsv[..., 2] >= MIN_CHROMA)
    hist = cv2.calcHist([hsv], [0, 1], chromatic.astype(np.uint8), [30, 32], [0, 180, 0, 256])
    return cv2.normalize(hist, None, 1.0, 0.0, cv2.NORM_L1)


def colour_correlation(image_a: np.ndarray, mask_a: np.ndarray, image_b: np.ndarray, mask_b: np.ndarray) -> float:
    """``cv2.compareHist`` correlation of the two regions' hue-saturation histograms (1 = same).

    A region with no coloured pixel at all has no colour to keep or match: 0.
    """
    hist_a, hist_b = hue_sat_histogram(image_a, mask_a), hue_sat_histogram(image_b, mask_b)
    if not hist_a.any() or not hist_b.any():
        return 0.0
    return float(cv2.compareHist(hist_a, hist_b, cv2.HISTCMP_CORREL))
