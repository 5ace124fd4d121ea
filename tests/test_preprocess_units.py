"""Exact checks of the pieces preprocessing is built from: sizing, the character image, writers, preview."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.preprocess.pose_pool import detect_all
from wanimate.preprocess.preview_video import compose_preview
from wanimate.preprocess.reference import load_character
from wanimate.preprocess.sizing import letterbox, parse_area, size_for_area, stretch
from wanimate.preprocess.writers import ThreadedWriter
from wanimate.video import iter_frames, probe_video


@pytest.mark.parametrize(
    ("size", "area", "expected"),
    [
        ((1280, 720), (1280, 720), (1280, 720)),
        ((720, 1280), (1280, 720), (720, 1280)),
        ((512, 512), (1280, 720), (960, 960)),  # sqrt(921600) = 960 exactly
        ((176, 144), (1280, 720), (1056, 864)),  # 1061.3 -> 1056, 868.4 -> 864
        ((1000, 1000), (1020, 1020), (1024, 1024)),  # 63.75 multiples: nearest is up, floor would be 1008
        ((1000, 1000), (1010, 1010), (1008, 1008)),  # 63.125 multiples: nearest is down
        ((4000, 100), (64, 64), (400, 16)),  # never below one multiple of 16
    ],
)
def test_size_for_area_rounds_each_side_to_the_nearest_multiple_of_16(size, area, expected) -> None:
    out = size_for_area(*size, area)
    assert out == expected
    assert out[0] % 16 == 0 and out[1] % 16 == 0


def test_size_for_area_keeps_area_and_aspect_within_rounding() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        w, h = (int(v) for v in rng.integers(64, 4000, size=2))
        out_w, out_h = size_for_area(w, h, (1280, 720))
        exact_w, exact_h = math.sqrt(1280 * 720 * w / h), math.sqrt(1280 * 720 * h / w)
        if exact_w >= 16 and exact_h >= 16:
            assert abs(out_w - exact_w) <= 8 and abs(out_h - exact_h) <= 8


def test_parse_area_accepts_common_spellings_and_rejects_junk() -> None:
    assert parse_area("1280x720") == (1280, 720)
    assert parse_area(" 832*480 ") == (832, 480)
    assert parse_area("720p") == (1280, 720)  # the names the docs and `bench --res` use
    with pytest.raises(WanimateError, match="1280x720"):
        parse_area("HD")
    with pytest.raises(WanimateError, match="at least"):
        parse_area("32x32")


def test_letterbox_moves_pixels_and_keypoints_together() -> None:
    src = np.zeros((100, 200, 3), np.uint8)
    src[30:34, 150:154] = 255  # a white 4x4 dot centred at continuous (152, 32)
    fit = letterbox((100, 200), (160, 160))
    assert fit.scaled_size == (80, 160) and fit.offset == (0, 40)
    out = fit.apply_image(src)
    assert out.shape == (160, 160, 3)
    assert out[:40].max() == 0 and out[120:].max() == 0  # black bars top and bottom
    kp = fit.apply_keypoints(np.array([[152.0, 32.0, 0.9]], np.float32))
    x, y = kp[0, :2]
    assert (x, y) == pytest.approx((152 * 0.8, 32 * 0.8 + 40))
    assert out[int(y), int(x)].min() > 100  # the keypoint still sits on the dot
    assert kp[0, 2] == pytest.approx(0.9)
    box = fit.apply_boxes(np.array([10, 20, 30, 40], np.float32))
    assert box == pytest.approx([8, 56, 24, 72])


def test_stretch_fills_the_target_exactly() -> None:
    fit = stretch((144, 176), (256, 320))
    assert fit.apply_image(np.zeros((144, 176, 3), np.uint8)).shape == (256, 320, 3)
    kp = fit.apply_keypoints(np.array([[176.0, 144.0, 1.0]], np.float32))
    assert kp[0, :2] == pytest.approx([320, 256])


def test_character_image_composites_alpha_on_black(tmp_path: Path) -> None:
    rgba = np.zeros((80, 100, 4), np.uint8)
    rgba[:, :50] = (255, 0, 0, 255)
    rgba[:, 50:] = (0, 255, 0, 0)  # fully transparent green must not leak
    Image.fromarray(rgba, "RGBA").save(tmp_path / "char.png")
    loaded = load_character(tmp_path / "char.png").pixels
    assert loaded.shape == (80, 100, 3)
    assert (loaded[:, :50] == (255, 0, 0)).all()
    assert (loaded[:, 50:] == 0).all()


def test_character_image_applies_exif_orientation(tmp_path: Path) -> None:
    pixels = np.zeros((80, 120, 3), np.uint8)
    pixels[:, :10] = 255  # a bright left edge
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    loaded = load_character(tmp_path / "phone.jpg").pixels
    assert loaded.shape == (120, 80, 3)
    assert loaded[:10].mean() > 200 and loaded[20:].mean() < 30  # the left edge is now on top


def test_character_image_size_limits(tmp_path: Path) -> None:
    Image.new("RGB", (63, 200)).save(tmp_path / "tiny.png")
    with pytest.raises(WanimateError, match="at least 64"):
        load_character(tmp_path / "tiny.png")
    Image.new("RGB", (4000, 1000)).save(tmp_path / "huge.png")
    big = load_character(tmp_path / "huge.png")
    assert big.pixels.shape == (960, 3840, 3)
    assert big.original_size == (4000, 1000)
    assert "downscaled to 3840x960" in big.notices[0]
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(WanimateError, match="not an image"):
        load_character(tmp_path / "junk.png")


def test_threaded_writer_keeps_every_frame_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with ThreadedWriter(path, 10, lossless=True) as writer:
        for value in range(0, 250, 10):
            writer.write(np.full((32, 48, 3), value, np.uint8))
    assert probe_video(path).num_frames == 25
    means = np.array([f.mean() for f in iter_frames(path)])
    assert np.abs(means - np.arange(0, 250, 10)).max() <= 1  # order kept; yuv444 rounding is at most 1
    assert writer.busy_s > 0


def test_threaded_writer_abort_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), ThreadedWriter(path, 10) as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_preview_row_scales_every_tile_to_one_height() -> None:
    tiles = [
        ("driving", np.full((144, 176, 3), 200, np.uint8)),
        ("skeleton", np.zeros((320, 320, 3), np.uint8)),
        ("face", np.full((512, 512, 3), 50, np.uint8)),
    ]
    strip = compose_preview(tiles, height=160)
    widths = [round(176 * 160 / 144), 160, 160]
    assert strip.shape == (160 + 22, sum(widths) + 2 * 2, 3)
    assert strip[40:, : widths[0]].mean() == pytest.approx(200, abs=1)  # first tile below its label
    assert strip[:22, :60].max() > 200  # a white (anti-aliased) label was drawn


class _CountingBackend:
    """Records the frames it saw; 'detects' the frame's value so order can be checked."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def detect(self, frame: np.ndarray) -> list[int]:
        value = int(frame[0, 0, 0])
        self.seen.append(value)
        return [value]


@pytest.mark.parametrize(("workers", "count"), [(1, 5), (2, 37), (3, 64), (2, 0)])
def test_pose_pool_keeps_frame_order_and_uses_every_backend(workers: int, count: int) -> None:
    backends = [_CountingBackend() for _ in range(workers)]
    frames = (np.full((4, 6, 3), i, np.uint8) for i in range(count))
    progress: list[int] = []
    detections, size = detect_all(frames, backends, block=8, on_done=progress.append)
    assert detections == [[i] for i in range(count)]
    assert sum(progress) == count
    assert size == ((4, 6) if count else None)
    assert sorted(v for b in backends for v in b.seen) == list(range(count))
    for backend in backends:  # consecutive runs of frames, so stateful tracking still works
        assert all(b - a == 1 for a, b in zip(backend.seen, backend.seen[1:], strict=False) if (a + 1) % 8)
    if count >= 8 * workers:
        assert all(backend.seen for backend in backends)


def test_pose_pool_surfaces_a_backend_error() -> None:
    class Broken(_CountingBackend):
        def detect(self, frame: np.ndarray) -> list[int]:
            if int(frame[0, 0, 0]) == 11:
                raise RuntimeError("model crashed")
            return super().detect(frame)

    with pytest.raises(RuntimeError, match="model crashed"):
        detect_all((np.full((2, 2, 3), i, np.uint8) for i in range(40)), [Broken(), Broken()], block=4)
