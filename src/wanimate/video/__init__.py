"""Streaming video I/O on PyAV: frames in, frames out, audio carried along (docs/video.md)."""

from wanimate.video.audio import audio_to_carry
from wanimate.video.frames import FrameSequenceWriter, save_frames
from wanimate.video.reader import AudioInfo, VideoInfo, count_frames, iter_frames, probe_video, scaled_size
from wanimate.video.timing import fps_fraction
from wanimate.video.writer import VideoWriter, partial_path

__all__ = [
    "AudioInfo",
    "FrameSequenceWriter",
    "VideoInfo",
    "VideoWriter",
    "audio_to_carry",
    "count_frames",
    "fps_fraction",
    "iter_frames",
    "partial_path",
    "probe_video",
    "save_frames",
    "scaled_size",
]
