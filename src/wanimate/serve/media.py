"""Upload checks: a file is accepted only if it really decodes as what it claims to be.

Extensions and content types are the client's word; decoding is proof. Images are
fully decoded (a truncated PNG fails ``load``) with a pixel cap against decompression
bombs. Videos are demuxed and decoded to the end, so a file cut short is caught here
with a clear message rather than minutes later inside preprocessing.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import BinaryIO

from wanimate.image import MAX_IMAGE_PIXELS

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "TIFF"}
CHUNK = 1024 * 1024


class MediaError(Exception):
    """A rejected input: ``status`` is the HTTP code, the message says what to fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def save_upload(source: BinaryIO, dest: Path, limit: int, what: str) -> int:
    """Copy an upload to ``dest`` in chunks, stopping as soon as it exceeds ``limit`` bytes."""
    size = 0
    with open(dest, "wb") as out:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise MediaError(413, f"the {what} is larger than this server's limit of {limit // 1024} KiB")
            out.write(chunk)
    if size == 0:
        raise MediaError(400, f"the {what} is empty")
    return size


def check_image(path: Path, what: str = "character image") -> str:
    """Decode the whole image; returns the file extension its real format calls for."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                fmt = image.format or ""
                if fmt not in IMAGE_FORMATS:
                    raise MediaError(415, f"the {what} is a {fmt or 'unknown'} file; send PNG, JPEG, WebP, BMP or TIFF")
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise MediaError(
                        413,
                        f"the {what} has too many pixels ({image.width}x{image.height}; the limit is "
                        f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels)",
                    )
                image.load()
    except UnidentifiedImageError:
        raise MediaError(415, f"the {what} is not an image (PNG, JPEG, WebP, BMP or TIFF)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError(413, f"the {what} has too many pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(422, f"the {what} is truncated or corrupt ({exc})") from None
    return {"JPEG": ".jpg", "TIFF": ".tif"}.get(fmt, f".{fmt.lower()}")


VIDEO_SUFFIXES = {"mov,mp4,m4a,3gp,3g2,mj2": ".mp4", "matroska,webm": ".mkv", "avi": ".avi"}


def check_video(path: Path, what: str = "driving video") -> tuple[int, str]:
    """Decode every frame; returns the frame count and the file extension the container calls for."""
    import av

    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise MediaError(415, f"the {what} is not a video file (send MP4, MOV, WebM, MKV or AVI)") from None
    with container:
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe") or not container.streams.video:
            raise MediaError(415, f"the {what} is not a video ({fmt}); send MP4, MOV, WebM, MKV or AVI")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        declared = stream.frames
        decoded = 0
        try:
            for _ in container.decode(stream):
                decoded += 1
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(422, f"the {what} is truncated or corrupt after frame {decoded} ({exc})") from None
    if decoded < 2:
        raise MediaError(422, f"the {what} has {decoded} decodable frames; it is truncated or not a video")
    if declared and decoded < declared * 0.95:
        raise MediaError(422, f"the {what} is truncated: {decoded} of its {declared} frames decode")
    return decoded, VIDEO_SUFFIXES.get(fmt, f".{fmt.split(',')[0]}")


def confined_path(root: Path | None, requested: str, what: str) -> Path:
    """A server-side file named by a client, guaranteed to lie inside ``root`` after symlinks resolve."""
    if root is None:
        raise MediaError(400, f"{what}: this server takes uploads only (no --input-root is configured)")
    if not requested or "\x00" in requested:
        raise MediaError(400, f"{what}: give a file path relative to the input root")
    base = root.resolve(strict=True)
    candidate = Path(requested)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    # Containment is checked before existence, so probing paths outside the root learns nothing.
    if not resolved.is_relative_to(base):
        raise MediaError(403, f"{what}: {requested!r} is outside the input root")
    if not resolved.is_file():
        raise MediaError(404, f"{what}: {requested!r} is not a file under the input root")
    return resolved


def copy_checked(source: Path, dest: Path, limit: int, what: str) -> int:
    size = source.stat().st_size
    if size == 0:
        raise MediaError(400, f"the {what} is empty")
    if size > limit:
        raise MediaError(413, f"the {what} is larger than this server's limit of {limit // 1024} KiB")
    shutil.copyfile(source, dest)
    return size
