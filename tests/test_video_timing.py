"""Frame-rate arithmetic: exact broadcast rates and nearest-timestamp resampling, without media."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from test_video_clips import nearest_indices

from wanimate.video.timing import NearestTimestamp, fps_fraction, resampled_count


@pytest.mark.parametrize(
    ("fps", "exact"),
    [
        (29.97, Fraction(30000, 1001)),
        (30000 / 1001, Fraction(30000, 1001)),
        (23.976, Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (30.0, Fraction(30)),
        (25, Fraction(25)),
        (12.5, Fraction(25, 2)),
        (Fraction(7, 3), Fraction(7, 3)),
    ],
)
def test_fps_fraction(fps: float | Fraction, exact: Fraction) -> None:
    assert fps_fraction(fps) == exact


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), float("inf")])
def test_fps_fraction_rejects_nonsense(bad: float) -> None:
    with pytest.raises(ValueError):
        fps_fraction(bad)


def test_resampled_count_rounds_and_keeps_one_frame() -> None:
    carphone = Fraction(120 * 1001, 30000)  # 120 frames at 29.97 fps
    assert resampled_count(carphone, Fraction(15)) == 60
    assert resampled_count(carphone, Fraction(30000, 1001)) == 120
    assert resampled_count(Fraction(1), Fraction(30)) == 30
    assert resampled_count(Fraction(1, 1000), Fraction(30)) == 1


def _run(times: list[Fraction], fps: Fraction, total: int) -> list[int]:
    picker = NearestTimestamp(fps, total)
    chosen: list[int] = []
    for index, time in enumerate(times):
        chosen += [index - 1] * picker.push(time)
        if picker.done:
            return chosen
    return chosen + [len(times) - 1] * picker.finish()


def test_streaming_picker_matches_brute_force_on_irregular_times() -> None:
    rng = random.Random(3)
    for _ in range(50):
        times = [Fraction(0)]
        for _ in range(rng.randint(1, 40)):
            times.append(times[-1] + Fraction(rng.randint(1, 90), 1000))
        fps = Fraction(rng.choice([5, 12, 24, 25, 30, 60]))
        total = resampled_count(times[-1] + Fraction(1, 30), fps)
        assert _run(times, fps, total) == nearest_indices(times, fps, total)


def test_streaming_picker_60_to_30_keeps_every_other_frame() -> None:
    times = [Fraction(i, 60) for i in range(60)]
    assert _run(times, Fraction(30), 30) == list(range(0, 60, 2))
