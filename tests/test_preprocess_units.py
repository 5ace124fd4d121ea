"""Exact checks of the pieces preprocessing is built from: sizing, the character image, writers, preview."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.preprocess.pose_pool import Span, detect_all, split
from wanimate.preprocess.reference import load_character
from wanimate.preprocess.sizing import letterbox, parse_area, size_for_area, stretch
from wanimate.preprocess.strip import compose_strip
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


def test_strip_scales_every_tile_to_one_height() -> None:
    tiles = [
        ("driving", np.full((144, 176, 3), 200, np.uint8)),
        ("skeleton", np.zeros((320, 320, 3), np.uint8)),
        ("face", np.full((512, 512, 3), 50, np.uint8)),
    ]
    strip = compose_strip(tiles, height=160)
    widths = [round(176 * 160 / 144), 160, 160]
    assert strip.shape == (160 + 22, sum(widths) + 2 * 2, 3)
    assert strip[40:, : widths[0]].mean() == pytest.approx(200, abs=1)  # first tile below its label
    assert strip[:22, :60].max() > 200  # a white (anti-aliased) label was drawn


@dataclass
class _Found:
    value: int  # the frame's index, so order can be checked
    bbox: np.ndarray


class _CountingBackend:
    """Records the frames it saw; 'detects' one person whose box says which frame it is in.

    ``blind`` frames after it starts it finds nobody, as a cold start may miss someone."""

    def __init__(self, blind: int = 0) -> None:
        self.seen: list[int] = []
        self.blind = blind

    def detect(self, frame: np.ndarray) -> list[_Found]:
        value = int(frame[0, 0, 0])
        self.seen.append(value)
        if len(self.seen) <= self.blind:
            return []
        return [_Found(value, np.array([value, 0, value + 10, 10], np.float32))]


def _stretches(count: int) -> Callable[[int], Iterator[np.ndarray]]:
    """A clip of ``count`` frames whose pixels are their index, read from a start frame like the real reader."""

    def read(start: int) -> Iterator[np.ndarray]:
        return (np.full((4, 6, 3), i, np.uint8) for i in range(start, count))

    return read


@pytest.mark.parametrize(
    ("total", "workers", "expected"),
    [
        (200, 2, [(0, 100), (100, None)]),
        (200, 4, [(0, 67), (67, 133), (133, None)]),  # stretches of at least MIN_SPAN (60) frames
        (119, 2, [(0, None)]),
        (None, 4, [(0, None)]),
        (500, 1, [(0, None)]),
    ],
)
def test_stretches_cover_the_clip_and_the_last_runs_to_its_end(
    total: int | None, workers: int, expected: list[tuple[int, int | None]]
) -> None:
    assert [(s.start, s.stop) for s in split(total, workers)] == expected


@pytest.mark.parametrize(("total", "spans"), [(5, 1), (37, 2), (64, 3), (0, 2), (50, 2)])
def test_pose_pool_keeps_frame_order_and_each_backend_sees_one_stretch(total: int, spans: int) -> None:
    stretches = split(total, spans, min_span=10)
    assert len(stretches) == (spans if total else 1)
    backends = [_CountingBackend() for _ in stretches]
    progress: list[int] = []
    count = total + 3 if total == 50 else total  # the video gives more frames than probed: the last stretch reads on
    detections, size = detect_all(_stretches(count), backends, stretches, on_done=progress.append, poll_s=0.01)
    assert [[p.value for p in people] for people in detections] == [[i] for i in range(count)]
    assert sum(progress) == count
    assert size == ((4, 6) if count else None)
    for backend, span in zip(backends, stretches, strict=True):  # consecutive frames: stateful tracking works
        end = count if span.stop is None else span.stop + 1  # and the next stretch's first, to agree on the seam
        assert backend.seen == list(range(span.start, max(span.start, end)))


def test_a_worker_carries_on_until_the_next_one_sees_the_same_people() -> None:
    """The second worker starts cold and misses the person for 5 frames: the first one's
    detections fill those frames, and the seam moves to where both see them."""
    first, second = _CountingBackend(), _CountingBackend(blind=5)
    detections, _ = detect_all(_stretches(60), [first, second], [Span(0, 30), Span(30)], poll_s=0.01)
    assert [[p.value for p in people] for people in detections] == [[i] for i in range(60)]
    assert first.seen == list(range(36))  # its stretch, the 5 frames the second missed, and the one they agree on
    assert second.seen == list(range(30, 60))


def test_a_carried_worker_stops_where_the_next_one_ends() -> None:
    """Nobody ever agrees (the second worker finds no one): the first carries on to the clip's end
    at most MAX_HANDOVER frames, and every frame still has one list of detections."""
    first, second = _CountingBackend(), _CountingBackend(blind=10**6)
    detections, _ = detect_all(_stretches(50), [first, second], [Span(0, 30), Span(30)], poll_s=0.01)
    assert [[p.value for p in people] for people in detections] == [[i] for i in range(50)]
    assert first.seen == list(range(50))


def test_two_people_in_the_first_frame_leave_the_clip_to_the_first_worker() -> None:
    class Pair(_CountingBackend):
        def detect(self, frame: np.ndarray) -> list[_Found]:
            one = super().detect(frame)
            return [*one, _Found(one[0].value, one[0].bbox + 100)]

    class Slow(_CountingBackend):
        def detect(self, frame: np.ndarray) -> list[_Found]:
            time.sleep(0.005)
            return super().detect(frame)

    first, second = Pair(), Slow()
    progress: list[int] = []
    detections, _ = detect_all(_stretches(80), [first, second], [Span(0, 40), Span(40)], on_done=progress.append)
    assert [[p.value for p in people] for people in detections] == [[i, i] for i in range(80)]
    assert first.seen == list(range(80)) and len(second.seen) < 40  # the second stopped early
    assert sum(progress) == 80


def test_pose_pool_surfaces_a_backend_error_and_stops_the_others() -> None:
    class Broken(_CountingBackend):
        def detect(self, frame: np.ndarray) -> list[_Found]:
            if int(frame[0, 0, 0]) == 11:
                raise RuntimeError("model crashed")
            return super().detect(frame)

    class Slow(_CountingBackend):
        def detect(self, frame: np.ndarray) -> list[_Found]:
            time.sleep(0.01)
            return super().detect(frame)

    slow = Slow()
    with pytest.raises(RuntimeError, match="model crashed"):
        detect_all(_stretches(2000), [Broken(), slow], [Span(0, 20), Span(20)], poll_s=0.01)
    assert len(slow.seen) < 1980  # stopped at its next frame, not run to the end


def test_pose_pool_stops_when_progress_raises() -> None:
    """The character's pose failing beside pass 1 surfaces through ``on_done`` and ends the workers."""
    backend = _CountingBackend()

    def watch(_: int) -> None:
        if len(backend.seen) > 5:
            raise ValueError("no person in the character image")

    def slow(start: int) -> Iterator[np.ndarray]:
        for i in range(start, 10_000):
            time.sleep(0.001)
            yield np.full((4, 6, 3), i % 256, np.uint8)

    with pytest.raises(ValueError, match="character image"):
        detect_all(slow, [backend], [Span(0)], on_done=watch, poll_s=0.01)
    assert len(backend.seen) < 10_000
