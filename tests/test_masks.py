"""Person masks: choosing the followed person, the official grid refinement, and real segmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.preprocess import masks
from wanimate.preprocess.masks import PersonSegmenter, background, refine_mask, sam2_config_for, select_person


def person_blob(mask: np.ndarray, cx: int, top: int) -> None:
    """A head and a torso, roughly person-shaped."""
    cv2.circle(mask, (cx, top + 30), 25, 1, thickness=-1)
    cv2.ellipse(mask, (cx, top + 150), (55, 95), 0, 0, 360, 1, thickness=-1)


def body_points(cx: int, top: int) -> np.ndarray:
    kp = np.zeros((133, 3), np.float32)
    kp[0] = (cx, top + 35, 0.9)  # nose
    kp[5] = (cx + 35, top + 80, 0.9)  # shoulders
    kp[6] = (cx - 35, top + 80, 0.9)
    kp[11] = (cx + 25, top + 200, 0.9)  # hips
    kp[12] = (cx - 25, top + 200, 0.9)
    return kp


def two_people() -> np.ndarray:
    fg = np.zeros((300, 500), np.uint8)
    person_blob(fg, 120, 20)
    person_blob(fg, 380, 20)
    return fg


def test_keypoints_pick_only_their_person() -> None:
    fg = two_people()
    mask = select_person(fg > 0, body_points(380, 20)[:, :2][body_points(380, 20)[:, 2] > 0], None)
    assert mask[170, 380] and not mask[170, 120]
    assert mask.sum() == (fg[:, 250:] > 0).sum()


def test_a_stray_point_on_a_neighbour_does_not_pull_them_in() -> None:
    fg = two_people()
    seeds = np.array([[120, 55], [155, 100], [85, 100], [145, 220], [95, 220], [120, 170], [330, 160]], np.float32)
    mask = select_person(fg > 0, seeds, None)
    assert mask[170, 120] and not mask[170, 380]


def test_points_just_outside_the_mask_still_count() -> None:
    fg = two_people()
    mask = select_person(fg > 0, np.array([[178, 170]], np.float32), None)  # 3 px right of the torso
    assert mask[170, 120] and not mask[170, 380]


def test_box_picks_a_region_and_bounds_touching_people() -> None:
    fg = two_people()
    cv2.rectangle(fg, (170, 160), (330, 175), 1, thickness=-1)  # the two touch (arms linked)
    box = np.array([60.0, 20.0, 180.0, 250.0])
    mask = select_person(fg > 0, np.zeros((0, 2), np.float32), box)
    assert mask[170, 120] and not mask[170, 380]
    assert not mask[:, 193:].any()  # box plus 10% margin ends at x = 192


def test_without_points_or_box_everyone_is_kept() -> None:
    fg = two_people()
    assert (select_person(fg > 0, np.zeros((0, 2), np.float32), None) == (fg > 0)).all()
    assert not select_person(np.zeros((10, 10), bool), np.zeros((0, 2), np.float32), None).any()


def test_one_by_one_grid_fills_the_bounding_rectangle() -> None:
    mask = np.zeros((100, 120), bool)
    mask[20:60, 30:40] = True  # an L shape
    mask[50:60, 30:90] = True
    full = refine_mask(mask, iterations=0)
    assert full.sum() == 40 * 60 and full[20:60, 30:90].all()  # last row and column included
    grown = refine_mask(mask, iterations=1, k=3, w_len=0, h_len=0)
    assert grown.sum() == 42 * 12 + 62 * 12 - 12 * 12 and grown[19, 29] and not grown[18, 29]


def test_finer_grids_follow_the_contour() -> None:
    mask = np.zeros((100, 120), bool)
    mask[20:60, 30:40] = True
    mask[50:60, 30:90] = True
    coarse = refine_mask(mask, iterations=0, w_len=1, h_len=1)
    medium = refine_mask(mask, iterations=0, w_len=3, h_len=2)
    fine = refine_mask(mask, iterations=0, w_len=12, h_len=8)
    assert mask.sum() <= fine.sum() < medium.sum() < coarse.sum()
    assert (fine >= mask).all() and (medium >= fine).all()
    assert not medium[25, 80]  # the empty corner of the L stays empty


def test_empty_and_tiny_masks_do_not_crash() -> None:
    empty = np.zeros((50, 60), np.uint8)
    assert not refine_mask(empty).any()
    dot = np.zeros((50, 60), np.uint8)
    dot[5, 10] = 1
    assert refine_mask(dot, iterations=0, w_len=10, h_len=20).sum() == 1
    assert refine_mask(dot, iterations=3, k=7).sum() == 15 * 19  # a 19 px square cut by the top edge


def test_background_blanks_the_person() -> None:
    frame = np.full((4, 5, 3), 200, np.uint8)
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    bg = background(frame, mask)
    assert bg.dtype == np.uint8 and not bg[1:3, 2:4].any() and (bg[0] == 200).all()
    np.testing.assert_array_equal(background(frame, mask.astype(np.uint8)), bg)


# The astronaut photo (512x512): face around (225, 110), shoulders at (113, 240) and (306, 257).
ASTRONAUT_POINTS = {0: (223, 128), 1: (249, 112), 2: (205, 103), 3: (268, 123), 4: (190, 107)}
ASTRONAUT_POINTS |= {5: (306, 257), 6: (113, 240)}


def astronaut_keypoints(scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    kp = np.zeros((133, 3), np.float32)
    for index, (x, y) in ASTRONAUT_POINTS.items():
        kp[index] = (x * scale + dx, y * scale + dy, 0.9)
    return kp


def test_real_photo_mask_covers_the_face_not_the_corners(astronaut_image: Path) -> None:
    frame = np.array(Image.open(astronaut_image).convert("RGB"))
    with PersonSegmenter("mediapipe") as segmenter:
        mask = segmenter.segment(frame, astronaut_keypoints(), None)
        segmenter.close()  # closing early is fine: leaving the block closes again
    assert mask.shape == frame.shape[:2] and mask.dtype == bool
    assert mask[75:150, 195:255].mean() > 0.95  # the face
    assert mask[0:40, 0:40].mean() < 0.05 and mask[0:40, 472:512].mean() < 0.05


def test_real_photo_with_two_people_keeps_the_followed_one(astronaut_image: Path) -> None:
    person = cv2.resize(np.array(Image.open(astronaut_image).convert("RGB")), (360, 360))
    frame = np.full((720, 1280, 3), 110, np.uint8)
    frame[300:660, 80:440] = person
    frame[300:660, 840:1200] = person
    scale = 360 / 512
    with PersonSegmenter("mediapipe") as segmenter:
        right = segmenter.segment(frame, astronaut_keypoints(scale, 840, 300), None)
        left = segmenter.segment(frame, astronaut_keypoints(scale, 80, 300), None)
    left_face = (slice(355, 400), slice(220, 255))  # the face box above, scaled and shifted
    right_face = (slice(355, 400), slice(980, 1015))
    assert left[left_face].mean() > 0.9 and not right[left_face].any()
    assert right[right_face].mean() > 0.9 and not left[right_face].any()
    assert not left[:, 640:].any() and not right[:, :640].any()


def test_explicit_sam2_without_the_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = masks.importlib.util.find_spec
    monkeypatch.setattr(masks.importlib.util, "find_spec", lambda n: None if n == "sam2" else real_find_spec(n))
    with pytest.raises(WanimateError, match="sam2"):
        PersonSegmenter("sam2", checkpoint=Path("sam2.1_hiera_large.pt"))
    with pytest.raises(WanimateError, match="auto, mediapipe or sam2"):
        PersonSegmenter("grabcut")


def test_sam2_config_names() -> None:
    assert sam2_config_for(Path("/w/sam2.1_hiera_large.pt")) == "configs/sam2.1/sam2.1_hiera_l.yaml"
    assert sam2_config_for(Path("sam2_hiera_base_plus.pt")) == "configs/sam2/sam2_hiera_b+.yaml"
    with pytest.raises(WanimateError, match="file name"):
        sam2_config_for(Path("my_model.pt"))


def test_sam2_backend_is_prompted_with_body_points_and_box(fake_sam2, tmp_path: Path) -> None:
    """SAM2 is not installable here (it needs torchvision), so a stand-in records what it is asked."""
    calls = fake_sam2
    checkpoint = tmp_path / "sam2.1_hiera_small.pt"
    checkpoint.write_bytes(b"")

    segmenter = PersonSegmenter("auto", checkpoint=checkpoint)
    assert segmenter.backend == "sam2"
    kp = body_points(120, 20)
    kp[91:133] = (100, 100, 1.0)  # hand points are not used as prompts
    mask = segmenter.segment(np.zeros((300, 500, 3), np.uint8), kp, np.array([60, 20, 180, 250]))
    segmenter.close()
    assert calls["config"] == "configs/sam2.1/sam2.1_hiera_s.yaml" and calls["ckpt"] == str(checkpoint)
    assert calls["point_coords"].shape == (5, 2) and (calls["point_labels"] == 1).all()  # type: ignore[union-attr]
    np.testing.assert_array_equal(calls["box"], [60, 20, 180, 250])
    assert mask.dtype == bool and mask.sum() == (150 - 75) * (250 - 125)
