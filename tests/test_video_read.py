"""Reading: nearest-timestamp resampling, rotation, 10-bit and alpha input, downscaling, probing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_video_clips import decode_all, index_frame, nearest_indices, read_index, write_clip

from wanimate.video import count_frames, iter_frames, probe_video, scaled_size


def _indices(path: Path, fps: float | None) -> list[int]:
    return [read_index(frame) for frame in iter_frames(path, fps=fps)]


def test_carphone_reads_120_frames_and_15_fps_gives_60(carphone_video: Path) -> None:
    info = probe_video(carphone_video)
    assert (info.width, info.height, info.num_frames) == (176, 144, 120)
    assert info.rate == Fraction(30000, 1001)
    assert info.duration == pytest.approx(4.004)
    frames = list(iter_frames(carphone_video))
    assert len(frames) == 120 and frames[0].shape == (144, 176, 3) and frames[0].dtype == np.uint8
    reference = decode_all(carphone_video)
    assert all(np.array_equal(a, b) for a, b in zip(frames, reference, strict=True))
    resampled = list(iter_frames(carphone_video, fps=15))
    assert len(resampled) == 60 == count_frames(carphone_video, 15) == info.frame_count(15)
    # 15 fps from 29.97 takes (nearly) every other frame: frame k is the source frame nearest k/15 s.
    times = [Fraction(i * 1001, 30000) for i in range(120)]
    expected = nearest_indices(times, Fraction(15), 60)
    assert all(np.array_equal(resampled[k], reference[i]) for k, i in enumerate(expected))


def test_60_to_30_keeps_every_other_frame(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c60.mp4", [index_frame(k) for k in range(60)], fps=60)
    assert _indices(clip, 30) == list(range(0, 60, 2))
    assert _indices(clip, None) == list(range(60))


def test_24_to_30_duplicates_the_nearest_frames(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c24.mp4", [index_frame(k) for k in range(48)], fps=24)
    got = _indices(clip, 30)
    assert len(got) == 60 == count_frames(clip, 30)
    assert got[:10] == [0, 1, 2, 2, 3, 4, 5, 6, 6, 7]  # every 4th source frame is shown twice
    assert got == [round(k * 0.8) for k in range(60)]


def test_fractional_target_rate(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "c25.mp4", [index_frame(k) for k in range(50)], fps=25)
    got = _indices(clip, 29.97)
    rate = Fraction(30000, 1001)
    assert len(got) == round(2 * rate)
    assert got == nearest_indices([Fraction(i, 25) for i in range(50)], rate, len(got))


@pytest.mark.parametrize(("fps", "source_fps", "start"), [(None, 30, 17), (30, 24, 9), (30, 60, 11), (30, 24, 0)])
def test_reading_from_a_start_frame_gives_the_tail_of_a_full_read(
    tmp_path: Path, fps: float | None, source_fps: int, start: int
) -> None:
    """What a pose worker that begins mid-clip reads: exactly the frames a read from frame 0 gives there,
    repeated and dropped frames included."""
    clip = write_clip(tmp_path / f"c{source_fps}.mp4", [index_frame(k) for k in range(2 * source_fps)], fps=source_fps)
    whole = [read_index(frame) for frame in iter_frames(clip, fps=fps)]
    tail = [read_index(frame) for frame in iter_frames(clip, fps=fps, start=start)]
    assert tail == whole[start:] and len(tail) == len(whole) - start
    assert list(iter_frames(clip, fps=fps, start=len(whole))) == []


@pytest.mark.parametrize("container_format", ["mp4", "matroska"])
def test_variable_frame_rate_uses_real_timestamps(tmp_path: Path, container_format: str) -> None:
    stamps = [0, 30, 50, 120, 130, 200, 260, 400, 410, 470, 600, 610, 620, 700]  # milliseconds
    clip = write_clip(
        tmp_path / f"vfr.{container_format}",
        [index_frame(k) for k in range(len(stamps))],
        pts=stamps,
        time_base=Fraction(1, 1000),
        container_format=container_format,
    )
    info = probe_video(clip)
    assert info.num_frames == len(stamps)
    assert 0.70 < info.duration < 0.75  # first frame to the end of the last one
    got = _indices(clip, 30)
    assert len(got) == round(info.exact_duration * 30) == count_frames(clip, 30)
    times = [Fraction(s, 1000) for s in stamps]
    assert got == nearest_indices(times, Fraction(30), len(got))
    assert got.count(6) == 3 and 11 not in got  # the 140 ms gap repeats a frame, the 10 ms burst drops one


def _quadrants() -> np.ndarray:
    """64x32 picture with four colours, so every rotation and mirror is distinguishable."""
    image = np.zeros((32, 64, 3), np.uint8)
    image[:16, :32] = (255, 0, 0)
    image[:16, 32:] = (0, 255, 0)
    image[16:, :32] = (0, 0, 255)
    image[16:, 32:] = (255, 255, 255)
    return image


def _same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(int) - b).mean()) < 12


@pytest.mark.parametrize(
    ("ccw", "rotation", "upright"),
    [
        (90, 270, lambda im: np.rot90(im, 1)),
        (-90, 90, lambda im: np.rot90(im, -1)),
        (180, 180, lambda im: np.rot90(im, 2)),
    ],
)
def test_display_matrix_rotation_is_applied(tmp_path: Path, ccw: int, rotation: int, upright) -> None:
    clip = write_clip(tmp_path / "rot.mp4", [_quadrants()] * 3, rotation=ccw)
    info = probe_video(clip)
    expected = upright(_quadrants())
    assert info.rotation == rotation
    assert (info.height, info.width) == expected.shape[:2]
    frames = list(iter_frames(clip))
    assert len(frames) == 3 and all(_same_picture(f, expected) for f in frames)


def test_display_matrix_mirror_is_applied(tmp_path: Path) -> None:
    with av.open(str(tmp_path / "m.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(0, hflip=True)
        for packet in stream.encode(av.VideoFrame.from_ndarray(_quadrants(), format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (frame,) = iter_frames(tmp_path / "m.mp4")
    assert _same_picture(frame, _quadrants()[:, ::-1])


def test_rotate_tag_is_applied(tmp_path: Path) -> None:
    """Matroska keeps a ``rotate`` tag as plain metadata (clockwise degrees, as older phones wrote)."""
    clip = write_clip(tmp_path / "tag.mkv", [_quadrants()] * 2, metadata={"rotate": "90"})
    assert probe_video(clip).rotation == 90
    assert all(_same_picture(f, np.rot90(_quadrants(), -1)) for f in iter_frames(clip))


def test_ten_bit_becomes_eight_bit_rgb(tmp_path: Path) -> None:
    image = np.zeros((48, 64, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None, :]
    image[..., 2] = 90
    clip = write_clip(tmp_path / "ten.mp4", [image] * 3, pix_fmt="yuv420p10le")
    info = probe_video(clip)
    assert info.pix_fmt == "yuv420p10le"
    frames = list(iter_frames(clip))
    assert frames[0].dtype == np.uint8 and frames[0].shape == (48, 64, 3)
    assert float(np.abs(frames[0].astype(int) - image).mean()) < 3


def _transparent() -> np.ndarray:
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., 0], rgba[..., 1] = 200, 100
    rgba[..., 3] = np.linspace(0, 255, 64).astype(np.uint8)[None, :]
    return rgba


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt", "options"),
    [
        ("png.mov", "png", "rgba", None),
        ("rle.mov", "qtrle", "argb", None),
        ("vp9.webm", "libvpx-vp9", "yuva420p", {"lossless": "1"}),
        ("prores.mov", "prores_ks", "yuva444p10le", None),
    ],
)
def test_alpha_is_composited_over_black(
    tmp_path: Path, name: str, codec: str, pix_fmt: str, options: dict[str, str] | None
) -> None:
    rgba = _transparent()
    clip = write_clip(tmp_path / name, [rgba] * 3, codec=codec, pix_fmt=pix_fmt, input_format="rgba", options=options)
    assert probe_video(clip).has_alpha
    expected = (rgba[..., :3].astype(int) * rgba[..., 3:] / 255).round()
    frames = list(iter_frames(clip))
    assert len(frames) == 3
    assert frames[0].shape == (48, 64, 3)
    assert float(np.abs(frames[0] - expected).mean()) < 4
    assert frames[0][:, 0].max() <= 4 and frames[0][:, -1, 0].min() >= 190  # clear edge black, opaque edge red


def test_max_side_downscales_keeping_aspect(carphone_video: Path) -> None:
    frames = list(iter_frames(carphone_video, fps=5, max_side=88))
    assert len(frames) == 20
    assert frames[0].shape == (72, 88, 3)
    full = next(iter(iter_frames(carphone_video)))
    box = full.reshape(72, 2, 88, 2, 3).mean(axis=(1, 3))  # what area interpolation does for 2x
    assert float(np.abs(frames[0] - box).mean()) < 1.0
    assert next(iter(iter_frames(carphone_video, max_side=1000))).shape == (144, 176, 3)


def test_max_side_applies_to_the_upright_picture(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "rot.mp4", [_quadrants()], rotation=90)
    (frame,) = iter_frames(clip, max_side=16)
    assert frame.shape == (16, 8, 3)


def test_scaled_size() -> None:
    assert scaled_size(3840, 2160, 1920) == (1920, 1080)
    assert scaled_size(1080, 1920, 1280) == (720, 1280)
    assert scaled_size(640, 480, None) == (640, 480)
    assert scaled_size(640, 480, 640) == (640, 480)


def test_probe_reports_audio(tmp_path: Path) -> None:
    from test_video_audio import sine_clip

    clip, _ = sine_clip(tmp_path / "s.mp4", "aac", seconds=1.0)
    info = probe_video(clip)
    assert info.has_audio and info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 48000, 1)
    assert info.audio.duration == pytest.approx(1.0, abs=0.05)
    assert abs(info.audio.start) < 0.05


def test_frames_stream_without_accumulating(carphone_video: Path) -> None:
    """The iterator is lazy: it can be stopped early and frames are fresh arrays each time."""
    frames = iter_frames(carphone_video, fps=60)
    first, second = next(frames), next(frames)
    assert first is not second
    first[:] = 0  # editing a duplicate in place must not change the next one
    assert second.any()
    frames.close()
