"""Write H.264 mp4 files atomically: a crash never leaves a half-written video at the target.

Frames go to a hidden ``.<name>.partial`` file beside the target, which is renamed
into place only when :meth:`VideoWriter.close` succeeds. The temporary name is
fixed per target, so after a ``kill -9`` the next write to the same target
overwrites the leftover instead of piling up files (one writer per target at a time).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from wanimate.paths import make_parents, remove_empty, temp_sibling
from wanimate.video.audio import AudioFeed, AudioSource, AudioUnavailable
from wanimate.video.timing import fps_fraction

# Colour tags for the default (yuv420p) output: swscale converts RGB with the BT.601
# matrix, and saying so lets tag-aware players and tag-blind readers (decord,
# OpenCV) agree on the colours. Values are FFmpeg's AVCOL_* enums.
_BT601_MATRIX = 6  # AVCOL_SPC_SMPTE170M
_BT709 = 1  # AVCOL_PRI_BT709 / AVCOL_TRC_BT709: sRGB-like primaries and transfer
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG
# Lossless output decodes to the same bits at any preset, so the fastest one is used: for a 720p
# mask video it costs a third of the CPU of "veryfast" (6.7 vs 19.2 ms a frame) for files about ten
# times as large (still ~5 KB a frame for a mask).
_LOSSLESS_PRESET = "ultrafast"


def partial_path(path: str | Path) -> Path:
    """The hidden temporary file a write to ``path`` goes through (within the 255-byte name limit)."""
    return temp_sibling(path)


class VideoWriter:
    """H.264 .mp4 writer that publishes the file only when closed without error.

    * Default: yuv420p (plays everywhere), ``crf`` 17 (visually lossless), odd
      sizes padded to even by repeating the last row/column.
    * ``lossless=True``: every RGB value survives exactly (libx264rgb, qp 0, RGB
      4:4:4, any size); used for masks. FFmpeg, decord and OpenCV read it; web
      browsers do not, which masks never need.
    * ``threads``: x264's threads (0: its own choice, about 1.5 per core). A writer that
      shares the machine with others in their own threads does better with 1: the same
      frames for 10-25% less CPU, without x264's frame-thread handoffs.
    * ``fps`` may be a float; broadcast rates are kept exact (29.97 is written as
      30000/1001).
    * ``audio``: a stretch of another file's audio to carry along (see
      :mod:`wanimate.video.audio`). If it cannot be used the video is still
      written, without audio, and a warning says why (also in ``audio_warning``).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        *,
        lossless: bool = False,
        crf: int = 17,
        preset: str = "medium",
        threads: int = 0,
        audio: AudioSource | None = None,
    ) -> None:
        self.path = Path(path)
        self.rate = fps_fraction(fps)
        self.fps = float(self.rate)
        self.lossless = lossless
        self.crf = crf
        self.preset = preset
        self.threads = threads
        self.audio_source = audio
        self.audio_warning: str | None = None
        self.frames_written = 0
        self._created = make_parents(self.path)  # removed again if nothing gets written
        self._tmp = partial_path(self.path)
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._audio: AudioFeed | None = None
        self._size: tuple[int, int] | None = None  # (height, width) of the frames given

    def __enter__(self) -> VideoWriter:
        return self

    def _open(self, height: int, width: int) -> None:
        self._size = (height, width)
        self._start_container()
        if self.audio_source is None:
            return
        assert self._container is not None
        try:
            self._audio = AudioFeed(self.audio_source, self._container)
            self._container.start_encoding()  # opens the audio encoder now, while we can still back out
        except Exception as exc:  # any audio failure costs the audio, never the video
            self._warn(str(exc))
            self._drop()
            self._start_container()

    def _start_container(self) -> None:
        assert self._size is not None
        height, width = self._size
        self._container = av.open(str(self._tmp), mode="w", format="mp4", container_options={"movflags": "+faststart"})
        if self.lossless:
            stream = self._container.add_stream("libx264rgb", rate=self.rate)
            stream.width, stream.height = width, height
            stream.pix_fmt = "rgb24"
            stream.options = {"qp": "0", "preset": _LOSSLESS_PRESET}
        else:
            stream = self._container.add_stream("libx264", rate=self.rate)
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": self.preset}
            context = stream.codec_context
            context.colorspace, context.color_range = _BT601_MATRIX, _LIMITED_RANGE
            context.color_primaries, context.color_trc = _BT709, _BT709
        if self.threads:
            stream.codec_context.thread_count = self.threads
        self._stream = stream

    def _warn(self, reason: str) -> None:
        self.audio_warning = f"{self.path} is written without audio: {reason}"
        warnings.warn(self.audio_warning, stacklevel=3)

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3), or a grayscale (H, W) one; all frames share one size."""
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
        if self._stream is None:
            self._open(frame.shape[0], frame.shape[1])
        assert self._stream is not None and self._container is not None
        if frame.shape[:2] != self._size:
            raise ValueError(f"frame {self.frames_written} is {frame.shape[:2]}, the video is {self._size}")
        pad_h, pad_w = self._stream.height - frame.shape[0], self._stream.width - frame.shape[1]
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24")
        video_frame.pts = self.frames_written
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1
        self._feed_audio(Fraction(self.frames_written) / self.rate, finish=False)

    def _feed_audio(self, seconds: Fraction, *, finish: bool) -> None:
        if self._audio is None:
            return
        try:
            if finish:
                self._audio.finish(seconds)
            else:
                self._audio.write_until(seconds)
        except (av.error.FFmpegError, AudioUnavailable, ValueError) as exc:
            self._warn(f"the audio source failed after {float(self._audio.seconds_written):.2f} s ({exc})")
            self._audio.close()
            self._audio = None

    def close(self) -> Path:
        """Finish the file and move it into place; returns the target path."""
        if self._container is None:
            remove_empty(self._created)
            raise ValueError(f"no frames were written to {self.path}")
        assert self._stream is not None
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._feed_audio(Fraction(self.frames_written) / self.rate, finish=True)
            if self._audio is not None:
                self._audio.close()
                self._audio = None
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the target path is left as it was."""
        self._drop()
        remove_empty(self._created)

    def _drop(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError):  # the file is deleted next anyway
                self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
