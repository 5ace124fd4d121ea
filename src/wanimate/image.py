"""Open any still image a user may hand over and turn it into the 8-bit RGB the pipeline works on.

Pillow opens the header first, so the pixel count is checked before a byte is decoded: a
decompression bomb (a small file that inflates to gigapixels) is refused with its size and the
limit. ``Image.convert("RGB")`` clips 16-bit grey (``I;16``) at 255, which turns a photo white, and
ignores palette transparency, so every mode is converted here by its bit depth: 16-bit values are
divided by 257, 32-bit integers by their range, floats by theirs; alpha (RGBA, LA, PA, palette
transparency, premultiplied modes) is composited over the background; CMYK and Lab go through
Pillow's colour conversions.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from wanimate.errors import WanimateError
from wanimate.paths import input_file

MAX_IMAGE_PIXELS = 64_000_000  # 8000x8000; Pillow's own bomb guard starts at 89 MP
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def check_pixels(width: int, height: int, what: str, path: Path) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise WanimateError(
            f"{what} {path} is {width}x{height} ({_megapixels(width * height)}), over the limit of "
            f"{_megapixels(MAX_IMAGE_PIXELS)} (a guard against decompression bombs); shrink it first"
        )


def open_image(path: str | Path, what: str = "character image") -> Image.Image:
    """The image at ``path``, upright (EXIF orientation applied) and fully decoded, in its own mode."""
    path = input_file(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own, lower limit applies
            raw = Image.open(path)
    except Image.DecompressionBombError as exc:
        counts = [int(n) for n in re.findall(r"\d+", str(exc))]
        size = f" ({_megapixels(counts[0])})" if counts else ""
        raise WanimateError(
            f"{what} {path} is too large to decode safely{size}, over the limit of "
            f"{_megapixels(MAX_IMAGE_PIXELS)} (a guard against decompression bombs); shrink it first"
        ) from None
    except UnidentifiedImageError:
        raise WanimateError(f"{what} {path} is not an image Pillow can read; give a PNG, JPEG, WebP or TIFF") from None
    except OSError as exc:
        raise WanimateError(f"cannot read {what} {path}: {exc}") from exc
    with raw:
        check_pixels(raw.width, raw.height, what, path)
        try:
            raw.load()
            image = ImageOps.exif_transpose(raw)
        except (OSError, SyntaxError, ValueError) as exc:
            raise WanimateError(f"{what} {path} is truncated or corrupt ({exc}); export it again") from None
    return image if image is not raw else raw.copy()


def image_size(path: str | Path, what: str = "character image") -> tuple[int, int]:
    """(width, height) as :func:`open_image` will deliver it (orientation applied), from the header only."""
    path = input_file(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as raw:
                width, height = raw.size
                orientation = raw.getexif().get(0x0112, 1)
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError):
        return open_image(path, what).size  # the same checks, with their messages
    check_pixels(width, height, what, path)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _grey_to_8bit(image: Image.Image) -> np.ndarray:
    """A single-channel high-depth image (I;16*, I, F) scaled into 0..255 by its bit depth."""
    values = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16"):
        scale = 65535.0
    elif image.mode == "I":
        peak = float(values.max(initial=0.0))
        scale = 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else 4294967295.0
        values = values - min(float(values.min(initial=0.0)), 0.0)
    else:  # F: 0..1 floats are the common case, else the data's own range
        peak = float(np.nanmax(values, initial=0.0))
        scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak
    return np.clip(np.nan_to_num(values) / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _lab_to_rgb(image: Image.Image) -> Image.Image:
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return ImageCms.applyTransform(image, transform)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any Pillow mode; transparency is composited over ``background``."""
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return np.repeat(_grey_to_8bit(image)[:, :, None], 3, axis=2)
    if mode == "La":  # premultiplied grey: Pillow converts it only to plain LA
        image, mode = image.convert("LA"), "LA"
    if (
        mode in _ALPHA_MODES
        or (mode == "P" and "transparency" in image.info)
        or (mode in ("L", "RGB") and "transparency" in image.info)
    ):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return np.asarray(Image.alpha_composite(base, rgba).convert("RGB"), np.uint8).copy()
    if mode == "LAB":
        return np.asarray(_lab_to_rgb(image), np.uint8).copy()
    return np.asarray(image.convert("RGB"), np.uint8).copy()
