"""Small driving clips for the preprocessing tests, written on the fly from package media.

Short clips keep the end-to-end tests fast; writing them here (never committing media)
also lets the tests build exact synthetic cases: a person who walks out, no person at
all, a clip with an audio track.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from wanimate.video import iter_frames


def carphone_frames(path: Path, count: int) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    for frame in iter_frames(path):
        frames.append(frame)
        if len(frames) == count:
            break
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 30.0, *, audio: bool = False) -> Path:
    """Near-lossless H.264 (optionally with a 440 Hz AAC track) so detection sees the source."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        sound = container.add_stream("aac", rate=44100) if audio else None
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            samples = int(44100 * len(frames) / fps)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[start : start + 1024]
                block = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                block.sample_rate = 44100
                block.pts = start
                for packet in sound.encode(block):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path
