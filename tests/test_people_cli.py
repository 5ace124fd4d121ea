"""The wide shot end to end from the command line: ``wanimate people``, choosing with ``--person-at``
and ``--person``, both modes, the ``--people-media`` record read back, and bad choices as one line.

The clip is the first 24 frames of ``example:crowd`` (:func:`wanimate.scenes.wide_shot`, 768x576):
four people 100-130 px tall, the cameraman walking towards the right edge, the carphone man
walking behind a wall. The performer is Grace Hopper (id 2), in view in every frame.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wanimate import scenes
from wanimate.cli import main
from wanimate.materials import load_materials
from wanimate.materials.people import load_people
from wanimate.video import iter_frames

HOPPER = 1  # walker index in the scene
HOPPER_ID = 2  # her id: third from the left in frame 0
FRAMES = 24
AREA = ["--area", "384x288"]  # small outputs: the test is about who, not about pixels


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@dataclasses.dataclass
class Crowd:
    video: Path
    short: Path  # the first 6 frames, for the choices that fail
    boxes: list[list[np.ndarray | None]]
    shares: list[list[float]]
    hopper: list[np.ndarray | None]  # her visible pixels per frame


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Crowd:
    root = tmp_path_factory.mktemp("crowd")
    scene = dataclasses.replace(scenes.wide_shot(), frames=FRAMES)  # the clip's first frames, same speeds
    boxes, shares, hopper = [], [], []
    for t in range(FRAMES):
        _, truth = scenes.render(scene, t)
        boxes.append(truth.boxes)
        shares.append([truth.in_view(i) for i in range(len(scene.walkers))])
        hopper.append(truth.visible[HOPPER])
    video = scenes.write_scene(scene, root / "crowd.mp4")
    short = scenes.write_scene(dataclasses.replace(scene, frames=6), root / "short.mp4")
    return Crowd(video, short, boxes, shares, hopper)


def test_people_lists_everyone_and_draws_the_sheet(
    crowd: Crowd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = tmp_path / "sheet.png"
    code, out, err = _run(["people", str(crowd.video), "-o", str(sheet), "--quiet"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == f"4 people in crowd.mp4 (768x576, {FRAMES} frames)"
    rows = [line.split() for line in lines[2:6]]
    assert [int(row[0]) for row in rows] == [0, 1, 2, 3]
    assert rows[HOPPER_ID][1] == f"0-{FRAMES - 1}"  # Hopper: every frame
    heights = [float(row[-1].removesuffix("px")) for row in rows]
    assert all(60 <= h <= 200 for h in heights), heights  # median box heights; the cameraman stoops
    assert lines[-1] == f"wrote {sheet}"
    image = np.asarray(Image.open(sheet).convert("RGB"))
    assert image.shape[1] == 960 and image.shape[0] > 720 + 160  # the frame (960x720) and a row of thumbnails
    # asking again would overwrite the sheet: refused in one line, the sheet untouched
    before = sheet.read_bytes()
    code, _, err = _run(["people", str(crowd.video), "-o", str(sheet), "--quiet"], capsys)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert sheet.read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--person-at", "5,5"], ["--person-at 5,5: nobody is at that point", "people: 0: frames 0-5"]),
        (["--person", "9"], ["there is no person 9", "4 people were tracked"]),
        (["--person-at", "here"], ["--person-at must be X,Y"]),
        (["--person", "-1"], ["--person must be 'auto' or a person id"]),
    ],
)
def test_choosing_nobody_is_one_line_and_writes_nothing(
    crowd: Crowd,
    astronaut_image: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    needles: list[str],
) -> None:
    out = tmp_path / "m"
    args = ["preprocess", "--image", str(astronaut_image), "--video", str(crowd.short), "-o", str(out), "--quiet"]
    code, _, err = _run([*args, *AREA, *argv], capsys)
    assert code == 2, err
    message = err.strip()
    assert message.startswith("error:") and len(message.splitlines()) == 1, message
    for needle in needles:
        assert needle in message, message
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def _stretched(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127


@pytest.mark.parametrize("mode", ["animate", "replace"])
def test_the_wide_shot_preprocesses_with_the_chosen_persons_skeleton_and_mask_in_every_frame(
    crowd: Crowd, astronaut_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    out = tmp_path / "m"
    x0, y0, x1, y1 = crowd.boxes[0][HOPPER]
    choose = ["--person-at", f"{(x0 + x1) / 2:.0f},{(y0 + y1) / 2:.0f}"] if mode == "animate" else ["--person", "2"]
    # retargeting moves the skeleton with her across the frame and out of the character's canvas
    # (the official translation rule); without it the skeleton is the video's own, letterboxed
    extra = ["--people-media"] if mode == "replace" else ["--no-retarget"]
    args = ["preprocess", "--image", str(astronaut_image), "--video", str(crowd.video), "-o", str(out)]
    code, _, err = _run([*args, "--mode", mode, "--quiet", *AREA, *choose, *extra], capsys)
    assert code == 0, err
    materials = load_materials(out)
    tracking = json.loads((out / "meta.json").read_text())["provenance"]["tracking"]
    assert tracking["person"] == HOPPER_ID and tracking["people_seen"] == 4
    people = load_people(out)
    assert people.chosen == HOPPER_ID and len(people.people) == 4
    visible = np.array([share[HOPPER] >= 0.5 for share in crowd.shares])
    assert visible.all()
    assert people[HOPPER_ID].present.all()  # her skeleton in every frame she is visible in
    poses = list(iter_frames(out / "src_pose.mp4"))
    assert len(poses) == FRAMES and all(frame.max() > 100 for frame in poses)
    if mode == "animate":
        return
    size = (materials.width, materials.height)
    for t, mask in enumerate(iter_frames(out / "src_mask.mp4")):
        hers = _stretched(crowd.hopper[t], size)
        assert (mask[..., 0] > 127)[hers].mean() > 0.95, t  # the replace mask covers her
    # --people-media: everyone's instance masks, at the source size, read back through the record
    assert people.masks is not None and people[HOPPER_ID].face_video == out / "src_face.mp4"
    assert all(p.face_video is not None and p.face_video.is_file() for p in people.people)
    count = 0
    for t, labels in enumerate(people.iter_masks()):
        count += 1
        assert labels.shape == (576, 768) and set(np.unique(labels)) <= {0, 1, 2, 3, 4}
        hers = labels == HOPPER_ID + 1
        assert hers[crowd.hopper[t]].mean() > 0.5, t
        assert crowd.hopper[t][hers].mean() > 0.7, t
    assert count == FRAMES
