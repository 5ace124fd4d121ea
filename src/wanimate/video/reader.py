"""Read videos frame by frame, never holding the whole clip in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from wanimate.errors import WanimateError


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    has_audio: bool
    codec: str


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise WanimateError(f"video not found: {path}")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise WanimateError(f"cannot read video {path}: {exc}; re-encode it as H.264 mp4") from exc
    if not container.streams.video:
        container.close()
        raise WanimateError(f"{path} has no video stream")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Size, rate and frame count; the count is decoded when the header does not hold it."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        num_frames = stream.frames
        if num_frames <= 0:
            num_frames = sum(1 for _ in iter_frames(path))
        duration = float(stream.duration * stream.time_base) if stream.duration else num_frames / fps
        return VideoInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=fps,
            num_frames=num_frames,
            duration=duration,
            has_audio=bool(container.streams.audio),
            codec=stream.codec_context.name,
        )


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames (H, W, 3) in presentation order."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise WanimateError(f"video {path} is corrupt or truncated: {exc}") from exc
