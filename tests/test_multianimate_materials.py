"""N-character materials: the trained skeleton style, and the folder written from tracked people."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from wanimate.errors import WanimateError
from wanimate.materials.characters import load_character_materials
from wanimate.preprocess.characters import PeopleFrame, write_multianimate_materials
from wanimate.preprocess.dwpose_skeleton import draw_people
from wanimate.preprocess.keypoints import L_SHOULDER, R_SHOULDER, R_WRIST
from wanimate.preprocess.skeleton import draw_skeleton
from wanimate.testing.synthetic import character_boxes, figure_keypoints, smooth_noise


def _person(x: float) -> np.ndarray:
    return figure_keypoints((x, 20.0, x + 60.0, 200.0))


def test_dwpose_drawing_is_the_style_multianimate_was_trained_on():
    one = _person(40.0)
    canvas = draw_people(one[None], 256, 256)
    # Limb 0 (neck -> right shoulder) is OpenCV's (255, 0, 0) at 60%, saved as BGR and read as RGB.
    neck = (one[L_SHOULDER, :2] + one[R_SHOULDER, :2]) / 2
    mid = ((neck + one[R_SHOULDER, :2]) / 2).astype(int)
    assert tuple(canvas[mid[1], mid[0]]) == (0, 0, 153)
    x, y = one[R_WRIST, :2].astype(int)
    assert tuple(canvas[y, x]) == (0, 255, 170)  # the right wrist joint: (170, 255, 0) full colour, reversed
    # Fixed 4 px half-width, whatever the resolution (Wan2.2-Animate's drawing is 1 px at 256).
    column = canvas[:, mid[0]]
    assert 7 <= int((column == (0, 0, 153)).all(axis=1).sum()) <= 10
    assert not np.array_equal(canvas, draw_skeleton(one, 256, 256))
    # Everyone on one canvas; a point scoring 0.4 is drawn (threshold 0.3).
    two = np.stack([one, _person(150.0)])
    two[1, R_WRIST, 2] = 0.4
    both = draw_people(two, 256, 256)
    x2, y2 = two[1, R_WRIST, :2].astype(int)
    assert tuple(both[y2, x2]) == (0, 255, 170) and np.array_equal(both[:, :100], canvas[:, :100])


@dataclass
class _Tracked:
    """A fake tracker output: two figures side by side at 96x160, boxes as masks."""

    count: int = 2
    num_frames: int = 5
    frame_size: tuple[int, int] = (96, 160)
    fps: float = 12.0

    @property
    def num_people(self) -> int:
        return self.count

    def boxes(self, t: int) -> list[tuple[float, float, float, float]]:
        return character_boxes(self.count, *self.frame_size, t)

    def frames(self) -> Iterator[PeopleFrame]:
        for t in range(self.num_frames):
            keypoints = np.stack([figure_keypoints(b) for b in self.boxes(t)])
            masks = np.zeros((self.count, *self.frame_size), bool)
            for i, (x0, y0, x1, y1) in enumerate(self.boxes(t)):
                masks[i, int(y0) : int(y1) + 1, max(int(x0), 0) : int(x1) + 1] = True
            yield PeopleFrame(keypoints, masks)


def test_materials_from_tracked_people(tmp_path):
    people = _Tracked()
    reference = smooth_noise(np.random.default_rng(0), 96, 160)
    ref_people = np.stack([figure_keypoints(b) for b in people.boxes(0)])
    materials = write_multianimate_materials(
        tmp_path / "scene", people, reference, ref_people, area=(160, 96), provenance={"tracker": "fake"}
    )
    assert materials.characters == 2 and materials.num_frames == 5 and (materials.width, materials.height) == (160, 96)
    assert materials.meta.fps == 12.0 and materials.meta.provenance["tracker"] == "fake"
    first = [next(m.open())[..., 0] > 127 for m in materials.masks]
    expected = next(people.frames()).masks
    assert all(np.array_equal(a, b) for a, b in zip(first, expected, strict=True))
    drawn = draw_people(next(people.frames()).keypoints, 96, 160).astype(int)
    written = next(materials.pose.open()).astype(int)
    assert np.abs(written - drawn).mean() < 6  # the same drawing, H.264-compressed (4:2:0 like the JPEGs trained on)
    assert np.abs(written - np.roll(drawn, 8, axis=1)).mean() > 12
    assert load_character_materials(tmp_path / "scene").characters == 2


def test_reference_that_does_not_match_the_masks_leaves_nothing(tmp_path):
    people = _Tracked()
    reference = smooth_noise(np.random.default_rng(0), 96, 160)
    both_left = np.stack([figure_keypoints(people.boxes(0)[0])] * 2)  # nobody stands where character 2 is
    with pytest.raises(WanimateError, match=r"character 2's frame-0 mask .* does not match the reference"):
        write_multianimate_materials(tmp_path / "scene", people, reference, both_left, area=(160, 96))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(WanimateError, match="the reference has 1 people but 2 were tracked"):
        write_multianimate_materials(tmp_path / "scene", people, reference, both_left[:1], area=(160, 96))


def test_meta_versions_single_character_folders_stay_version_1(tmp_path, tiny_character_materials):
    import json

    from wanimate.materials import MaterialsMeta, load_materials
    from wanimate.testing.synthetic import write_materials

    single = json.loads((write_materials(tmp_path / "single", num_frames=5) / "meta.json").read_text())
    assert single["format_version"] == 1 and "characters" not in single and "model" not in single
    multi = json.loads((tiny_character_materials.root / "meta.json").read_text())
    assert (multi["format_version"], multi["model"], multi["characters"]) == (2, "multianimate", 3)
    with pytest.raises(WanimateError, match=r"format version 3 is not supported .* reads up to 2"):
        MaterialsMeta.from_json({**multi, "format_version": 3})
    with pytest.raises(WanimateError, match=r"holds MultiAnimate materials .* with --model multianimate"):
        load_materials(tiny_character_materials.root)
    with pytest.raises(WanimateError, match=r"holds single-character Wan2\.2-Animate materials"):
        load_character_materials(tmp_path / "single")
