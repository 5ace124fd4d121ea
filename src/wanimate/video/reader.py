"""Read videos frame by frame, upright, 8-bit RGB, at the frame rate the caller asks for.

Nothing here holds more than two decoded frames, so a one-hour 4K clip costs the
same memory as a one-second one. Every public call first demuxes the packets
(cheap, no decoding) to learn the exact frame count and timing, so truncated
files fail before any work is done and resampled lengths are known up front.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from wanimate.video.orientation import Orientation, frame_orientation
from wanimate.video.source import Timeline, VideoSource, is_attached_picture
from wanimate.video.timing import NearestTimestamp, fps_fraction, resampled_count


@dataclass(frozen=True)
class AudioInfo:
    """The first audio track, as much as re-muxing it needs to know."""

    codec: str
    sample_rate: int
    channels: int
    layout: str
    start: float  # seconds, on the clock where the first video frame is t=0
    duration: float | None


@dataclass(frozen=True)
class VideoInfo:
    """What a video is, as :func:`iter_frames` will deliver it (upright, every frame counted).

    ``width``/``height`` are upright (after rotation, before any ``max_side``);
    ``rotation`` is how far (clockwise degrees) the stored picture is turned to
    stand upright; ``duration`` runs from the first frame's start to the last
    frame's end, so ``num_frames / duration`` is the average rate.
    """

    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    has_audio: bool
    codec: str
    rotation: int = 0
    pix_fmt: str = ""
    has_alpha: bool = False
    rate: Fraction = Fraction(0)
    exact_duration: Fraction = Fraction(0)
    start_time: float = 0.0
    container: str = ""
    audio: AudioInfo | None = None

    def frame_count(self, fps: float | Fraction | None = None) -> int:
        """How many frames ``iter_frames(path, fps=fps)`` yields (for progress bars)."""
        if fps is None:
            return self.num_frames
        return resampled_count(self.exact_duration, fps_fraction(fps))


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) after shrinking so the longer side is at most ``max_side``, aspect kept."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _has_alpha(frame: av.VideoFrame) -> bool:
    return any(component.is_alpha for component in frame.format.components)


def _audio_info(source: VideoSource, timeline: Timeline) -> AudioInfo | None:
    streams = [s for s in source.container.streams.audio if not is_attached_picture(s)]
    if not streams:
        return None
    stream = streams[0]
    video_start = timeline.first * timeline.time_base
    start = stream.start_time * stream.time_base if stream.start_time is not None else video_start
    duration = float(stream.duration * stream.time_base) if stream.duration else None
    context = stream.codec_context
    return AudioInfo(
        codec=context.name if context is not None else "unknown",
        sample_rate=stream.sample_rate or 0,
        channels=stream.channels or 0,
        layout=stream.layout.name if context is not None else "",
        start=float(start - video_start),
        duration=duration,
    )


def probe_video(path: str | Path) -> VideoInfo:
    """Describe a video: upright size, exact frame count and duration, rotation, audio.

    Counts packets rather than trusting the header (Matroska and WebM often have
    none, phones' MP4 can disagree with their data) and decodes only the first
    frame, for its rotation and pixel format.
    """
    with VideoSource(path) as source:
        timeline, first = source.scan(decode_first=True)
        assert first is not None
        orientation = frame_orientation(first, dict(source.stream.metadata))
        width, height = orientation.upright_size(first.width, first.height)
        rate = source.stream.average_rate or Fraction(timeline.count) / timeline.duration
        return VideoInfo(
            width=width,
            height=height,
            fps=float(rate),
            num_frames=timeline.count,
            duration=float(timeline.duration),
            has_audio=bool([s for s in source.container.streams.audio if not is_attached_picture(s)]),
            codec=source.decoder.name,
            rotation=orientation.rotation,
            pix_fmt=first.format.name,
            has_alpha=_has_alpha(first),
            rate=Fraction(rate),
            exact_duration=timeline.duration,
            start_time=float(timeline.first * timeline.time_base),
            container=source.container.format.name,
            audio=_audio_info(source, timeline),
        )


def count_frames(path: str | Path, fps: float | Fraction | None = None) -> int:
    """How many frames ``iter_frames(path, fps=fps)`` yields, from packet timestamps, without decoding."""
    with VideoSource(path) as source:
        timeline, _ = source.scan()
    if fps is None:
        return timeline.count
    return resampled_count(timeline.duration, fps_fraction(fps))


class _Converter:
    """Turns decoded frames into upright RGB uint8 arrays of the requested size."""

    def __init__(self, first: av.VideoFrame, metadata: dict[str, str], max_side: int | None) -> None:
        self.orientation: Orientation = frame_orientation(first, metadata)
        self.alpha = _has_alpha(first)
        self.size = scaled_size(*self.orientation.upright_size(first.width, first.height), max_side)

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if self.alpha:
            # Transparent pixels become black: the picture is composited over black,
            # which is what a premultiplied-alpha renderer shows on an empty canvas.
            rgba = frame.to_ndarray(format="rgba").astype(np.uint16)
            image = ((rgba[..., :3] * rgba[..., 3:] + 127) // 255).astype(np.uint8)
        else:
            image = frame.to_ndarray(format="rgb24")
        image = self.orientation.apply(image)
        if (image.shape[1], image.shape[0]) != self.size:
            import cv2

            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        return image


def iter_frames(
    path: str | Path,
    fps: float | Fraction | None = None,
    max_side: int | None = None,
    start: int = 0,
) -> Iterator[np.ndarray]:
    """Yield upright RGB uint8 frames (H, W, 3), one at a time.

    ``fps=None`` yields every frame as stored. Otherwise output frame ``k`` is the
    source frame whose presentation time is nearest to ``k / fps`` (t=0 is the
    first frame; ties go to the earlier frame), frames being repeated or dropped
    as needed, for ``round(duration * fps)`` frames: variable-frame-rate input
    keeps its real timing. ``max_side`` shrinks frames whose longer side exceeds
    it (area interpolation, aspect kept). 10-bit input becomes 8-bit; alpha is
    composited over black.

    ``start``: begin at output frame ``start``, as the tail of a whole read. The frames
    before it are decoded (so the ones that follow are exactly those a read from the
    beginning gives, whatever the codec's reordering or the resampling) but not converted,
    which is about half the cost of a decoded 720p frame.
    """
    path = Path(path)
    with VideoSource(path) as source:
        timeline, _ = source.scan()
    rate = None if fps is None else fps_fraction(fps)
    with VideoSource(path) as source:
        metadata = dict(source.stream.metadata)
        convert: _Converter | None = None
        index = 0  # output index of the next frame picked
        for frame, copies in _picks(source, timeline, rate):
            convert = convert or _Converter(frame, metadata, max_side)
            wanted = index + copies - max(index, start)
            if wanted > 0:
                yield from _repeat(convert(frame), wanted)
            index += copies


def _picks(source: VideoSource, timeline: Timeline, rate: Fraction | None) -> Iterator[tuple[av.VideoFrame, int]]:
    """Each decoded frame that is output, with how many consecutive output frames it fills."""
    if rate is None:
        for frame in source.frames():
            yield frame, 1
        return
    picker = NearestTimestamp(rate, resampled_count(timeline.duration, rate))
    previous: av.VideoFrame | None = None
    time = Fraction(0)
    for frame in source.frames():
        if frame.pts is not None:
            time = (frame.pts - timeline.first) * timeline.time_base
        elif previous is not None:
            time += timeline.duration / timeline.count
        copies = picker.push(time)
        if previous is not None and copies:
            yield previous, copies
        if picker.done:
            return
        previous = frame
    if previous is not None:
        yield previous, picker.finish()


def _repeat(image: np.ndarray, copies: int) -> Iterator[np.ndarray]:
    """The same picture ``copies`` times, each a separate array so callers may edit them in place."""
    for index in range(copies):
        yield image if index == 0 else image.copy()
