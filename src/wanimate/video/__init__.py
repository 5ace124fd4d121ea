"""Streaming video I/O on PyAV: frames in, frames out, audio carried along."""

from wanimate.video.reader import VideoInfo, iter_frames, probe_video
from wanimate.video.writer import VideoWriter

__all__ = ["VideoInfo", "VideoWriter", "iter_frames", "probe_video"]
