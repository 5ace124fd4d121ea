"""Open a video for reading and turn every way it can be broken into a one-line fix.

Users hand us phone clips, screen recordings, half-finished downloads and the odd
text file. FFmpeg's own messages ("Invalid data found when processing input")
do not say what to do, so this module classifies the failure (missing, not a
video, no video stream, codec this build cannot decode, cut off, corrupt in the
middle) and names the file, the codec or the frame.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.logging
from av.codec.context import CodecContext
from av.stream import Disposition

from wanimate.errors import WanimateError

REENCODE_HINT = "re-encode it to H.264, e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p -c:a aac OUT.mp4`"
_IMAGE_FORMATS = ("image2", "_pipe")  # single pictures; animated GIF/APNG are videos
_TEXT_FORMATS = ("tty",)  # FFmpeg renders any text file as ANSI art; nobody means that


@dataclass(frozen=True)
class Timeline:
    """Presentation times of a stream's frames, gathered from packets without decoding.

    ``end`` is one frame past the last one (its pts plus its duration), so
    ``duration`` covers the last frame too: 120 frames at 29.97 fps last 4.004 s.
    """

    time_base: Fraction
    first: int
    end: int
    count: int

    @property
    def duration(self) -> Fraction:
        return (self.end - self.first) * self.time_base


def is_attached_picture(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & Disposition.attached_pic)


def _codec_label(path: Path, index: int) -> str:
    """The codec FFmpeg names for a stream it has no decoder for.

    Only FFmpeg's log says it, so the file is opened once more with logging on
    (an error path; the global log settings are restored right after).
    """
    level, skip = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.WARNING)
    av.logging.set_skip_repeated(False)
    try:
        with av.logging.Capture() as logs, av.open(str(path)):
            pass
    except av.error.FFmpegError:
        return "unknown"
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip)
    for _, _, message in logs:
        match = re.search(rf"stream {index} \(Video: (\w+)(?: \((\w+))?", message)
        if match:
            name, tag = match.groups()
            return tag if name == "none" and tag else name
    return "unknown"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return False
        text = head[: exc.start].decode("utf-8")
    return bool(text) and all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _unreadable(path: Path, exc: Exception) -> WanimateError:
    with path.open("rb") as handle:
        head = handle.read(512)
    if not head:
        return WanimateError(f"{path} is empty (0 bytes); export or copy the video again")
    if _looks_like_text(head):
        return WanimateError(f"{path} is a text file, not a video; give an .mp4, .mov, .mkv or .webm")
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return WanimateError(
            f"{path} looks like an MP4/MOV but cannot be read: it is probably truncated (an unfinished "
            "download, copy or recording); re-download or re-export it"
        )
    return WanimateError(f"{path} is not a video FFmpeg can read ({exc}); give an .mp4, .mov, .mkv or .webm")


class VideoSource:
    """An open video file: its main video stream, a decoder for it, and checked iteration.

    Use as a context manager; it closes the container on exit.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise WanimateError(f"video not found: {self.path}")
        if not self.path.is_file():
            raise WanimateError(f"{self.path} is not a file; give the path of a video")
        try:
            self.container = av.open(str(self.path), metadata_errors="replace")
        except av.error.FFmpegError as exc:
            raise _unreadable(self.path, exc) from exc
        try:
            self.stream = self._video_stream()
            self.decoder = self._make_decoder()
        except BaseException:
            self.container.close()
            raise

    def _video_stream(self) -> av.video.stream.VideoStream:
        if self.container.format.name in _TEXT_FORMATS:
            raise WanimateError(f"{self.path} is a text file, not a video; give an .mp4, .mov, .mkv or .webm")
        if any(self.container.format.name.endswith(name) for name in _IMAGE_FORMATS):
            raise WanimateError(f"{self.path} is a still image, not a video; give a video file")
        streams = [s for s in self.container.streams.video if not is_attached_picture(s)]
        if not streams:
            kind = "only audio" if self.container.streams.audio else "no video"
            raise WanimateError(f"{self.path} has no video stream ({kind}); give a video file")
        return streams[0]

    def _make_decoder(self) -> CodecContext:
        context = self.stream.codec_context
        if context is None:
            codec = _codec_label(self.path, self.stream.index)
            raise WanimateError(
                f"{self.path} uses the video codec '{codec}', which this FFmpeg build cannot decode; " + REENCODE_HINT
            )
        # FFmpeg's native VP8/VP9 decoders drop the alpha plane WebM stores beside the
        # picture; libvpx reads it, so transparent WebM keeps its transparency.
        alpha = {k.lower(): v for k, v in self.stream.metadata.items()}.get("alpha_mode") == "1"
        if alpha and context.name in ("vp8", "vp9"):
            return CodecContext.create("libvpx" if context.name == "vp8" else "libvpx-vp9", "r")
        context.thread_type = "AUTO"
        return context

    @property
    def is_indexed(self) -> bool:
        """MP4/MOV list every sample up front, so fewer packets than that means a cut file."""
        return "mp4" in self.container.format.name or "mov" in self.container.format.name

    def scan(self, *, decode_first: bool = False) -> tuple[Timeline, av.VideoFrame | None]:
        """Demux every packet (no decoding) to time the stream; optionally decode the first frame.

        Reading packets is cheap next to decoding, and it finds a truncated file
        before any work is done on it.
        """
        stream = self.stream
        time_base = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or 30
        step = 1 / (Fraction(rate) * time_base)  # one frame, for packets without a duration
        first: int | None = None
        end = 0
        count = discarded = 0
        first_frame: av.VideoFrame | None = None
        try:
            for packet in self.container.demux(stream):
                if decode_first and first_frame is None:
                    first_frame = next(iter(self.decoder.decode(packet)), None)
                if packet.size == 0:
                    continue
                if packet.is_discard:  # before an MP4 edit list's start: decoded, never shown
                    discarded += 1
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    stamp = round(count * step)
                first = stamp if first is None else min(first, stamp)
                end = max(end, stamp + (packet.duration or round(step)))
                count += 1
        except av.error.FFmpegError as exc:
            raise self.corrupt(count, exc) from exc
        if first is None:
            raise WanimateError(f"{self.path} has zero video frames; give a video with at least one frame")
        if self.is_indexed and stream.frames > count + discarded:
            raise WanimateError(
                f"{self.path} is truncated: its index lists {stream.frames} frames but the data stops "
                f"after frame {count}; re-download or re-export it"
            )
        if decode_first and first_frame is None:
            raise self.corrupt(0, None)
        return Timeline(time_base=time_base, first=first, end=end, count=count), first_frame

    def frames(self) -> Iterator[av.VideoFrame]:
        """Decoded frames in presentation order; a decoding failure names the frame it hit."""
        decoded = 0
        try:
            for packet in self.container.demux(self.stream):
                for frame in self.decoder.decode(packet):
                    decoded += 1
                    yield frame
        except av.error.FFmpegError as exc:
            raise self.corrupt(decoded, exc) from exc
        if decoded == 0:
            raise WanimateError(f"{self.path} has zero decodable video frames; " + REENCODE_HINT)

    def corrupt(self, frame: int, exc: Exception | None) -> WanimateError:
        detail = f" ({exc})" if exc is not None else ""
        return WanimateError(
            f"{self.path} is corrupt or truncated at frame {frame}{detail}; re-download or re-export it"
        )

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
