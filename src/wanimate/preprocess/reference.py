"""Load the character image the way a user expects to see it.

Phones store portraits sideways with an EXIF orientation tag, and character art is
often a transparent PNG; both must be resolved before anything measures the image,
or the pose, the letterbox and the CLIP features all see a different picture than the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.image import open_image, to_rgb
from wanimate.preprocess.sizing import MAX_SIDE, MIN_SIDE, downscale_size


@dataclass(frozen=True)
class CharacterImage:
    pixels: np.ndarray  # RGB uint8 (H, W, 3), orientation applied, alpha composited
    original_size: tuple[int, int]  # (W, H) after orientation, before any downscale
    notices: tuple[str, ...]


def load_character(path: str | Path, *, background: tuple[int, int, int] = (0, 0, 0)) -> CharacterImage:
    """Read, orient, composite and size-check the character image.

    Transparent pixels are composited on black, the colour of the official letterbox,
    so a cut-out character sits on the same background as its padding; every image mode
    (16-bit, palette, CMYK...) is converted by :func:`wanimate.image.to_rgb`. Images under
    64 px are refused (no pose model finds a person there); images over 4K are
    shrunk with a notice, since the output is at most a few megapixels anyway.
    """
    path = Path(path)
    image = Image.fromarray(to_rgb(open_image(path, "character image"), background))
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise WanimateError(f"character image {path} is {width}x{height}; each side must be at least {MIN_SIDE} px")
    notices: list[str] = []
    new_w, new_h = downscale_size(width, height)
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.LANCZOS)
        notices.append(f"character image is {width}x{height} (over {MAX_SIDE} px); downscaled to {new_w}x{new_h}")
    return CharacterImage(
        pixels=np.asarray(image, np.uint8).copy(), original_size=(width, height), notices=tuple(notices)
    )
