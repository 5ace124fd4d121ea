"""End to end on real media: astronaut (character) + the first frames of carphone (driver)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_preprocess_media import carphone_frames, write_clip

from wanimate.materials import load_materials
from wanimate.preprocess import preprocess
from wanimate.preprocess.keypoints import body20
from wanimate.preprocess.sizing import letterbox, size_for_area, stretch
from wanimate.video import iter_frames, probe_video

FRAMES = 24


@pytest.fixture(scope="module")
def clip(carphone_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    fps = probe_video(carphone_video).fps
    path = tmp_path_factory.mktemp("drive") / "carphone24.mp4"
    return write_clip(path, carphone_frames(carphone_video, FRAMES), fps)


@pytest.fixture(scope="module")
def animate_dir(astronaut_image: Path, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("animate") / "materials"
    preprocess(astronaut_image, clip, out, mode="animate", area=(320, 320), progress=False)
    return out


@pytest.fixture(scope="module")
def replace_dir(astronaut_image: Path, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replace") / "materials"
    preprocess(astronaut_image, clip, out, mode="replace", area=(352, 288), strip=True, progress=False)
    return out


def _frames(path: Path) -> list[np.ndarray]:
    return list(iter_frames(path))


def _check_skeleton_matches_keypoints(pose_video: Path, driving: np.ndarray) -> None:
    """Every confident body point is drawn, and nothing is drawn far from the keypoints."""
    frames = _frames(pose_video)
    assert len(frames) == len(driving)
    drawn_frames = 0
    for frame, kp in zip(frames, driving, strict=True):
        height, width = frame.shape[:2]
        body = body20(kp)
        inside = (body[:, 2] >= 0.5) & (body[:, 0] >= 3) & (body[:, 1] >= 3)
        inside &= (body[:, 0] < width - 3) & (body[:, 1] < height - 3)
        for x, y, _ in body[inside]:
            patch = frame[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4]
            assert patch.max() > 60, f"no skeleton pixel near keypoint ({x:.0f}, {y:.0f})"
        confident = kp[kp[:, 2] >= 0.5]
        if len(confident):
            drawn_frames += 1
            x0, y0 = np.floor(confident[:, :2].min(0)).astype(int) - 12
            x1, y1 = np.ceil(confident[:, :2].max(0)).astype(int) + 12
            outside = frame.astype(np.float32).copy()
            outside[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 0
            assert outside.max() < 40, "skeleton pixels far away from every keypoint"
        else:
            assert frame.max() < 40
    assert drawn_frames >= len(driving) * 0.8


def test_animate_materials_are_complete_and_consistent(animate_dir: Path, clip: Path) -> None:
    materials = load_materials(animate_dir)
    assert materials.mode == "animate"
    assert (materials.width, materials.height) == (320, 320)  # square astronaut, area 320x320
    assert materials.num_frames == FRAMES
    for name in ("pose", "face"):
        assert probe_video(materials.path(name)).num_frames == FRAMES
    face = probe_video(materials.path("face"))
    assert (face.width, face.height) == (512, 512)
    assert not materials.path("bg").exists() and not (animate_dir / "strip.mp4").exists()
    assert Image.open(materials.path("ref")).size == (320, 320)
    assert not list(animate_dir.parent.glob("*.partial-*"))

    data = np.load(animate_dir / "keypoints.npz")
    assert data["driving"].shape == (FRAMES, 133, 3) and data["driving"].dtype == np.float32
    assert data["driving_source"].shape == (FRAMES, 133, 3)
    assert data["reference"].shape == (133, 3)
    assert data["detected"].shape == (FRAMES,) and data["detected"].dtype == bool
    assert data["face_boxes"].shape == (FRAMES, 4)
    assert data["detected"].mean() > 0.8
    _check_skeleton_matches_keypoints(materials.path("pose"), data["driving"])

    # the reference keypoints are the astronaut's, in src_ref.png pixels: her nose is on her face
    ref = np.asarray(Image.open(materials.path("ref")))
    nose = data["reference"][0]
    assert nose[2] > 0.5 and 100 < nose[0] < 220 and 40 < nose[1] < 160
    assert ref[int(nose[1]), int(nose[0])].mean() > 60

    # face boxes are in source pixels and sit around the source face landmarks
    face_pts = data["driving_source"][:, 23:91]
    for box, pts in zip(data["face_boxes"], face_pts, strict=True):
        ok = pts[:, 2] > 0.3
        if ok.sum() > 10:
            cx, cy = pts[ok, :2].mean(0)
            assert box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def test_animate_meta_records_inputs_settings_and_the_followed_person(animate_dir: Path, clip: Path) -> None:
    meta = json.loads((animate_dir / "meta.json").read_text())
    assert meta["num_frames"] == FRAMES
    assert meta["fps"] == pytest.approx(probe_video(clip).fps)
    assert meta["audio"] is None  # carphone has no sound
    prov = meta["provenance"]
    assert prov["inputs"]["video"]["path"] == str(clip.resolve())
    assert len(prov["inputs"]["video"]["sha256"]) == 64
    assert prov["settings"]["retarget"] is True and prov["settings"]["area"] == [320, 320]
    assert prov["backend"] == "mediapipe"
    tracking = prov["tracking"]
    assert tracking["frames_scanned"] == FRAMES
    assert tracking["frames_detected"] + tracking["frames_interpolated"] + tracking["frames_missing"] == FRAMES
    assert "person" in json.dumps(tracking)
    for stage in ("decode", "pose", "tracking", "skeleton", "face", "writing", "total"):
        assert prov["timings_s"][stage] >= 0


def test_replace_materials_mask_is_exact_and_background_is_cut_out(replace_dir: Path, clip: Path) -> None:
    materials = load_materials(replace_dir)
    assert materials.mode == "replace"
    assert (materials.width, materials.height) == size_for_area(176, 144, (352, 288)) == (352, 288)
    for name in ("pose", "face", "bg", "mask"):
        assert probe_video(materials.path(name)).num_frames == FRAMES
    masks = _frames(materials.path("mask"))
    backgrounds = _frames(materials.path("bg"))
    source = carphone_frames(clip, FRAMES)
    fit = stretch((144, 176), (288, 352))
    covered = []
    for mask, bg, frame in zip(masks, backgrounds, source, strict=True):
        assert set(np.unique(mask)) <= {0, 255}
        assert (mask[..., 0] == mask[..., 1]).all() and (mask[..., 0] == mask[..., 2]).all()
        person = mask[..., 0] == 255
        covered.append(person.mean())
        if person.any():
            assert bg[person].mean() < 10  # the performer is cut out of the background
        if (~person).any():
            diff = np.abs(bg[~person].astype(np.int16) - fit.apply_image(frame)[~person].astype(np.int16))
            assert diff.mean() < 12  # the rest is the frame itself
    assert np.median(covered) > 0.1  # carphone's talker fills a good part of the frame

    data = np.load(replace_dir / "keypoints.npz")
    assert np.allclose(data["driving"], fit.apply_keypoints(data["driving_source"]))
    _check_skeleton_matches_keypoints(materials.path("pose"), data["driving"])
    meta = json.loads((replace_dir / "meta.json").read_text())
    assert meta["provenance"]["settings"]["retarget"] is False  # never in replace mode

    strip = probe_video(replace_dir / "strip.mp4")
    assert strip.num_frames == FRAMES
    assert strip.height == 320 + 22 and strip.width > 4 * 320


def test_no_retarget_letterboxes_the_driver_exactly(
    astronaut_image: Path, clip: Path, tmp_path: Path, animate_dir: Path
) -> None:
    out = tmp_path / "plain"
    materials = preprocess(astronaut_image, clip, out, retarget=False, area=(320, 320), progress=False)
    data = np.load(out / "keypoints.npz")
    expected = letterbox((144, 176), (320, 320)).apply_keypoints(data["driving_source"])
    assert np.allclose(data["driving"], expected)
    retargeted = np.load(animate_dir / "keypoints.npz")["driving"]
    assert not np.allclose(retargeted[..., :2], data["driving"][..., :2], atol=1.0)  # retargeting moved bones
    assert json.loads((out / "meta.json").read_text())["provenance"]["settings"]["retarget"] is False
    assert materials.num_frames == FRAMES


def test_fps_resampling_changes_the_frame_count_and_keeps_audio(
    astronaut_image: Path, carphone_video: Path, tmp_path: Path
) -> None:
    frames = carphone_frames(carphone_video, 30)
    clip = write_clip(tmp_path / "talk.mp4", frames, 30.0, audio=True)
    materials = preprocess(
        astronaut_image, clip, tmp_path / "m15", fps=15, retarget=False, area=(128, 128), progress=False
    )
    assert materials.meta.fps == 15
    assert materials.num_frames == len(list(iter_frames(clip, fps=15)))
    assert abs(materials.num_frames - 15) <= 1  # 1 s of video at 15 fps
    assert probe_video(materials.path("face")).num_frames == materials.num_frames
    audio = materials.meta.audio
    assert audio is not None and audio.path == str(clip.resolve())
    assert audio.start == 0 and audio.duration == pytest.approx(materials.num_frames / 15)
