"""Output size and the letterbox geometry shared by images, frames and keypoints.

The official preprocessing picks the output size from a target pixel *area* (default
1280x720) with the aspect ratio kept and both sides multiples of 16, because the VAE
(stride 8) and the DiT patches (2x2) need that. Images and keypoints must move through
exactly the same transform, so one :class:`Fit` describes it for both.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from wanimate.errors import WanimateError

DIVISOR = 16
MIN_SIDE = 64
MAX_SIDE = 3840  # 4K UHD: anything larger is downscaled before processing
NAMED_AREAS = {"480p": (832, 480), "720p": (1280, 720)}  # Wan's two trained sizes


def parse_area(text: str) -> tuple[int, int]:
    """``"1280x720"`` or ``"720p"`` -> ``(1280, 720)``; only the product matters, but users think in sides."""
    if text.strip().lower() in NAMED_AREAS:
        return NAMED_AREAS[text.strip().lower()]
    match = re.fullmatch(r"\s*(\d+)\s*[x*×]\s*(\d+)\s*", text)
    if not match:
        raise WanimateError(f"--area must look like 1280x720 or be one of {', '.join(NAMED_AREAS)}, not {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    check_area((width, height))
    return width, height


def check_area(area: tuple[int, int]) -> None:
    """Each side of a target area between 64 px and 4K: beyond that no frame fits in memory for long."""
    width, height = area
    if min(width, height) < MIN_SIDE:
        raise WanimateError(f"--area {width}x{height} is too small; each side must be at least {MIN_SIDE}")
    if max(width, height) > MAX_SIDE:
        raise WanimateError(f"--area {width}x{height} is too large; each side must be at most {MAX_SIDE}")


def size_for_area(width: int, height: int, area: tuple[int, int], divisor: int = DIVISOR) -> tuple[int, int]:
    """The ``(W, H)`` closest to ``area[0]*area[1]`` pixels with the aspect of ``width x height``.

    Each side is rounded to the nearest multiple of ``divisor`` (never below one
    multiple), so the aspect error stays within half a divisor per side.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {width}x{height}")
    target = area[0] * area[1]
    aspect = width / height
    out_w = math.sqrt(target * aspect)
    out_h = math.sqrt(target / aspect)
    return (
        max(divisor, round(out_w / divisor) * divisor),
        max(divisor, round(out_h / divisor) * divisor),
    )


@dataclass(frozen=True)
class Fit:
    """Scale then offset: source pixel (x, y) lands at (x*sx + ox, y*sy + oy) in the target.

    Coordinates are continuous (0..W spans the image), the convention of every pose
    backend, so keypoints and resized pixels stay aligned.
    """

    src_size: tuple[int, int]  # (H, W)
    dst_size: tuple[int, int]  # (H, W)
    scaled_size: tuple[int, int]  # (H, W) of the resized content before padding
    offset: tuple[int, int]  # (x, y) of the content's top-left corner in the target

    @property
    def scale(self) -> tuple[float, float]:
        return self.scaled_size[1] / self.src_size[1], self.scaled_size[0] / self.src_size[0]

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        """Resize (area filter when shrinking, cubic when growing) and pad with black."""
        sh, sw = self.scaled_size
        shrinking = sw < image.shape[1] or sh < image.shape[0]
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
        resized = image if (sh, sw) == image.shape[:2] else cv2.resize(image, (sw, sh), interpolation=interp)
        if (sh, sw) == self.dst_size:
            return resized
        out = np.zeros((*self.dst_size, *image.shape[2:]), image.dtype)
        ox, oy = self.offset
        out[oy : oy + sh, ox : ox + sw] = resized
        return out

    def apply_keypoints(self, kps: np.ndarray) -> np.ndarray:
        """Move ``(..., 3)`` keypoints into the target frame; scores are kept as they are."""
        sx, sy = self.scale
        out = np.array(kps, np.float32, copy=True)
        out[..., 0] = out[..., 0] * sx + self.offset[0]
        out[..., 1] = out[..., 1] * sy + self.offset[1]
        return out

    def apply_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Move ``(..., 4)`` x0, y0, x1, y1 boxes into the target frame."""
        sx, sy = self.scale
        out = np.array(boxes, np.float32, copy=True)
        out[..., 0::2] = out[..., 0::2] * sx + self.offset[0]
        out[..., 1::2] = out[..., 1::2] * sy + self.offset[1]
        return out


def letterbox(src_size: tuple[int, int], dst_size: tuple[int, int]) -> Fit:
    """Fit ``src`` inside ``dst``, aspect kept, centred, black padding (official ``padding_resize``)."""
    (h, w), (dh, dw) = src_size, dst_size
    scale = min(dw / w, dh / h)
    sw, sh = min(dw, max(1, round(w * scale))), min(dh, max(1, round(h * scale)))
    return Fit(src_size=(h, w), dst_size=(dh, dw), scaled_size=(sh, sw), offset=((dw - sw) // 2, (dh - sh) // 2))


def stretch(src_size: tuple[int, int], dst_size: tuple[int, int]) -> Fit:
    """Resize ``src`` to exactly ``dst`` (replace mode: the frames themselves become the output)."""
    return Fit(src_size=tuple(src_size), dst_size=tuple(dst_size), scaled_size=tuple(dst_size), offset=(0, 0))


def output_size(
    mode: str, image_size: tuple[int, int], video_size: tuple[int, int], area: tuple[int, int]
) -> tuple[int, int]:
    """(W, H) of the materials: the character's aspect in animate mode, the video's in replace mode.

    Sizes are (W, H) as stored (upright); inputs over 4K count as downscaled, as they are processed.
    """
    width, height = downscale_size(*(image_size if mode == "animate" else video_size))
    return size_for_area(width, height, area)


def downscale_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The size an over-4K input is shrunk to (aspect kept), or the size itself when small enough."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))
