"""Every broken input gives a one-line WanimateError that names the problem, never a traceback."""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from test_video_clips import index_frame, write_clip

from wanimate.errors import WanimateError
from wanimate.video import count_frames, iter_frames, probe_video


def _all_readers_fail(path: Path, match: str) -> str:
    messages = []
    for read in (probe_video, count_frames, lambda p: list(iter_frames(p)), lambda p: list(iter_frames(p, fps=10))):
        with pytest.raises(WanimateError, match=match) as caught:
            read(path)
        messages.append(str(caught.value))
    assert all("\n" not in m for m in messages)
    return messages[0]


def test_missing_file(tmp_path: Path) -> None:
    _all_readers_fail(tmp_path / "nope.mp4", "video not found")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    _all_readers_fail(tmp_path, "not a file")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("notes.txt", b"hello, this is not a video\n" * 40, "text file, not a video"),
        ("data.mp4", bytes(random.Random(0).randrange(256) for _ in range(4096)), "not a video FFmpeg can read"),
        ("empty.mp4", b"", "empty"),
    ],
)
def test_not_a_video(tmp_path: Path, name: str, content: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _all_readers_fail(path, match)


def test_still_image(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    _all_readers_fail(path, "still image")


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "voice.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    _all_readers_fail(path, r"no video stream \(only audio\)")


def test_unsupported_codec_is_named(carphone_video: Path, tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    path.write_bytes(carphone_video.read_bytes().replace(b"avc1", b"zzzz"))
    message = _all_readers_fail(path, "codec 'zzzz'")
    assert "re-encode it to H.264" in message


def test_mp4_cut_in_half(carphone_video: Path, tmp_path: Path) -> None:
    """A real mp4 (index at the end) cut in half has lost its index: said to be truncated."""
    data = carphone_video.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    _all_readers_fail(path, "probably truncated")


def _faststart_clip(directory: Path) -> Path:
    frames = [index_frame(k) + np.uint8(k % 3) for k in range(60)]
    return write_clip(directory / "fs.mp4", frames, options={"g": "5"}, container_options={"movflags": "+faststart"})


def test_streamable_mp4_cut_mid_stream_names_the_frame(tmp_path: Path) -> None:
    """With the index up front, the cut is found by its missing frames, before any decoding."""
    data = _faststart_clip(tmp_path).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    message = _all_readers_fail(path, "truncated: its index lists 60 frames but the data stops after frame")
    stopped = int(message.split("after frame ")[1].split(";")[0])
    assert 10 < stopped < 50


def test_corrupt_data_mid_stream_names_the_frame(tmp_path: Path) -> None:
    clip = _faststart_clip(tmp_path)
    data = bytearray(clip.read_bytes())
    noise = random.Random(1)
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(noise.randrange(256) for _ in range(2000))
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(WanimateError, match=r"corrupt or truncated at frame \d+") as caught:
        list(iter_frames(path))
    frame = int(str(caught.value).split("at frame ")[1].split(" ")[0])
    assert 10 < frame < 50


def test_zero_frames(tmp_path: Path) -> None:
    """A Matroska file declaring a video track that never gets a frame (only audio was recorded)."""
    path = tmp_path / "nothing.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height = 64, 48
        audio = container.add_stream("aac", rate=8000)
        audio.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*audio.encode(frame), *audio.encode(None)]:
            container.mux(packet)
    _all_readers_fail(path, "zero video frames")
