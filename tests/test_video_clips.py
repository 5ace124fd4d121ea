"""Synthetic clips for the video tests, made with PyAV, and checks that the clips say what they claim.

Frames carry their own index in the pixels (two flat halves, one per base-16
digit, 16 grey levels apart) so that a reader's choice of frame can be checked
after lossy H.264 round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HEIGHT, WIDTH = 48, 64


def index_frame(k: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """An RGB frame whose left half encodes k // 16 and right half k % 16 (k < 256)."""
    assert 0 <= k < 256
    frame = np.empty((height, width, 3), np.uint8)
    frame[:, : width // 2] = 16 * (k // 16) + 8
    frame[:, width // 2 :] = 16 * (k % 16) + 8
    return frame


def read_index(frame: np.ndarray) -> int:
    """The k that :func:`index_frame` encoded, read from the centres of the two halves."""
    height, width = frame.shape[:2]
    rows = slice(height // 4, 3 * height // 4)
    high = float(frame[rows, width // 8 : 3 * width // 8].mean())
    low = float(frame[rows, 5 * width // 8 : 7 * width // 8].mean())
    return round((high - 8) / 16) * 16 + round((low - 8) / 16)


def nearest_indices(source_times: Sequence[Fraction], fps: Fraction, count: int) -> list[int]:
    """Brute force: for each output time k/fps, the index of the nearest source time (ties: earlier)."""
    chosen = []
    for k in range(count):
        target = Fraction(k) / fps
        chosen.append(min(range(len(source_times)), key=lambda i: (abs(source_times[i] - target), i)))
    return chosen


def write_clip(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: int | Fraction = 30,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    input_format: str = "rgb24",
    container_format: str | None = None,
    container_options: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
    rotation: int | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Encode ``frames`` with PyAV; ``pts`` (in ``time_base``) makes a variable-frame-rate clip."""
    with av.open(str(path), "w", format=container_format, container_options=container_options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        stream.options = {"preset": "ultrafast", **(options or {})} if codec.startswith("libx26") else options or {}
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        stream.metadata.update(metadata or {})
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format=input_format)
            if pts is not None:
                frame.pts = pts[index]
                frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame as stored (no rotation applied), straight from PyAV: the reference the tests compare to."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_index_survives_h264(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "idx.mp4", [index_frame(k) for k in range(0, 256, 5)])
    assert [read_index(f) for f in decode_all(clip)] == list(range(0, 256, 5))


def test_nearest_indices_prefers_earlier_on_ties() -> None:
    times = [Fraction(0), Fraction(1, 10), Fraction(2, 10)]
    assert nearest_indices(times, Fraction(20), 5) == [0, 0, 1, 1, 2]
