"""Write H.264 mp4 files atomically: a crash never leaves a half-written video behind."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from fractions import Fraction


class VideoWriter:
    """H.264 writer that publishes the file only when closed without error.

    Frames go to a hidden temporary file beside the target and are renamed into
    place on a clean exit, so readers never see a partial mp4.
    ``lossless`` keeps exact pixel values (used for masks and skeletons that must
    survive a round trip); the default is visually lossless yuv420p for players.
    """

    def __init__(self, path: str | Path, fps: float, *, lossless: bool = False, crf: int = 17) -> None:
        self.path = Path(path)
        self.fps = fps
        self.lossless = lossless
        self.crf = crf
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        return self

    def _open(self, height: int, width: int) -> None:
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width = width + width % 2
        stream.height = height + height % 2
        if self.lossless:
            stream.pix_fmt = "yuv444p"
            stream.options = {"qp": "0", "preset": "veryfast"}
        else:
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": "medium"}
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame (H, W, 3); odd sizes are padded by one edge pixel."""
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        if self._stream is None:
            self._open(frame.shape[0], frame.shape[1])
        assert self._stream is not None and self._container is not None
        pad_h = self._stream.height - frame.shape[0]
        pad_w = self._stream.width - frame.shape[1]
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> Path:
        if self._container is None:
            raise ValueError(f"no frames were written to {self.path}")
        assert self._stream is not None
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._container is not None:
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
