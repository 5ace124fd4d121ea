"""Writing: H.264 yuv420p mp4 at exact rates, lossless masks, atomic publication, PNG sequences."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from test_video_clips import index_frame, read_index

from wanimate.video import FrameSequenceWriter, VideoWriter, iter_frames, partial_path, probe_video, save_frames


def _stream_facts(path: Path) -> tuple[str, str, Fraction, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return (
            stream.codec_context.name,
            stream.codec_context.pix_fmt,
            stream.average_rate,
            stream.width,
            stream.height,
        )


def test_default_output_is_h264_yuv420p_at_exact_ntsc_rate(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 29.97) as writer:
        for k in range(30):
            writer.write(index_frame(k))
    assert _stream_facts(out) == ("h264", "yuv420p", Fraction(30000, 1001), 64, 48)
    info = probe_video(out)
    assert info.num_frames == 30 and info.duration == pytest.approx(30 * 1001 / 30000)
    assert [read_index(f) for f in iter_frames(out)] == list(range(30))


def test_default_output_keeps_colours(carphone_video: Path, tmp_path: Path) -> None:
    source = list(iter_frames(carphone_video, fps=5))
    out = tmp_path / "copy.mp4"
    with VideoWriter(out, 5) as writer:
        for frame in source:
            writer.write(frame)
    back = list(iter_frames(out))
    assert len(back) == len(source)
    error = np.mean([np.abs(a.astype(int) - b).mean(axis=(0, 1)) for a, b in zip(source, back, strict=True)], axis=0)
    assert error.max() < 4  # per channel: no colour-matrix mismatch (that shifts a channel by 5-10)


def test_odd_sizes_are_padded_to_even(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    frame = np.full((33, 47, 3), 120, np.uint8)
    with VideoWriter(out, 24) as writer:
        writer.write(frame)
    assert _stream_facts(out)[3:] == (48, 34)


def test_lossless_mask_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    masks = [np.where(rng.random((48, 64)) > 0.5, 255, 0).astype(np.uint8) for _ in range(6)]
    colours = [rng.integers(0, 256, (33, 47, 3), dtype=np.uint8) for _ in range(3)]
    for name, frames in (("mask.mp4", masks), ("rgb.mp4", colours)):
        out = tmp_path / name
        with VideoWriter(out, 30, lossless=True) as writer:
            for frame in frames:
                writer.write(frame)
        back = list(iter_frames(out))
        expected = [np.repeat(f[..., None], 3, axis=2) if f.ndim == 2 else f for f in frames]
        assert len(back) == len(frames)
        assert all(np.array_equal(a, b) for a, b in zip(back, expected, strict=True))
        assert _stream_facts(out)[0] == "h264"


def test_exception_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, 30) as writer:
        for k in range(60):  # past x264's look-ahead, so packets have reached the file
            writer.write(index_frame(k))
        assert partial_path(out).exists() and partial_path(out).name == ".out.mp4.partial"
        raise RuntimeError("boom")
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_bad_frames_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match="is \\(24, 32\\)"), VideoWriter(out, 30) as writer:
        writer.write(index_frame(0))
        writer.write(np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="no frames"), VideoWriter(out, 30):
        pass
    assert list(tmp_path.iterdir()) == []


_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from wanimate.video import VideoWriter
    with VideoWriter(sys.argv[1], 30) as writer:
        for k in range(100000):
            writer.write(np.full((48, 64, 3), k % 256, np.uint8))
            if k == 60:
                print("writing", flush=True)
            time.sleep(0.01)
    """
)


def test_kill_9_leaves_only_a_hidden_partial_that_the_next_write_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        time.sleep(0.2)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".out.mp4.partial"]
    with VideoWriter(out, 30) as writer:
        writer.write(index_frame(7))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    assert [read_index(f) for f in iter_frames(out)] == [7]


def test_png_sequence_is_exact_and_atomic(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(3)]
    assert save_frames(frames, tmp_path / "frames") == 3
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["000000.png", "000001.png", "000002.png"]
    for name, frame in zip(names, frames, strict=True):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "frames" / name)), frame)
    writer = FrameSequenceWriter(tmp_path / "frames", start=3)
    with pytest.raises(ValueError, match="uint8"):
        writer.write(frames[0].astype(np.float32))
    assert writer.write(frames[0]).name == "000003.png"
    assert not [p for p in (tmp_path / "frames").iterdir() if p.name.startswith(".")]
