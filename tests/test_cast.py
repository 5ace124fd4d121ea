"""The cast: checks, the composed reference, the cast folder, the preview of both modes, and bad input.

People here are ground truth (tests/cast_fixtures.py), so what is tested is the cast's own logic:
who is placed where, which track drives which character, layering, and what reaches each model pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cast_fixtures import CHARACTER_COLOURS, COLOURS, character, crossing_scene

from wanimate.cast.build import CastInputs, write_cast
from wanimate.cast.folder import load_cast
from wanimate.cast.spec import (
    MAX_CHARACTERS,
    CastMember,
    CastRequest,
    cast_model,
    cast_request,
    parse_cast_option,
    resolve_cast,
)
from wanimate.errors import WanimateError
from wanimate.video import iter_frames

SIZE = (128, 192)  # (H, W) of the scene and of the cast folders


@pytest.fixture(scope="module")
def scene():
    return crossing_scene(3, frames=10, size=SIZE)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, scene):
    """Persons 0 and 1 cast (they cross mid-clip, 1 nearer); person 2 stays a bystander."""
    root = tmp_path_factory.mktemp("cast")
    video = scene.write(root / "scene.mp4")
    chars = [character(i, root) for i in range(2)]
    members = [CastMember(i, c.image) for i, c in enumerate(chars)]
    return root, dict(members=members, characters=chars, people=scene.people, video=video, area=(192, 128))


@pytest.fixture(scope="module")
def animate_cast(inputs):
    root, kw = inputs
    return write_cast(root / "cast-animate", CastInputs(mode="animate", background="neutral", **kw))


@pytest.fixture(scope="module")
def replace_cast(inputs):
    root, kw = inputs
    return write_cast(root / "cast-replace", CastInputs(mode="replace", **kw))


def test_cast_request_forms_and_ids_cast_twice():
    assert cast_request({2: "b.png", 0: "a.png"}).by_id == ((2, Path("b.png")), (0, Path("a.png")))
    assert cast_request(["0=a.png", "2=b.png"]).by_id == ((0, Path("a.png")), (2, Path("b.png")))
    assert cast_request(["a.png", "b.png"]).in_order == (Path("a.png"), Path("b.png"))
    with pytest.raises(WanimateError, match=r"^person 1 is cast twice \(a.png and b.png\)"):
        cast_request(["1=a.png", "1=b.png"])
    with pytest.raises(WanimateError, match="not both"):
        cast_request(["0=a.png", "b.png"])
    with pytest.raises(WanimateError, match="--cast must be ID=IMAGE"):
        parse_cast_option("knight.png")
    assert len(CastRequest()) == 0
    from PIL import Image

    examples = cast_request(["0=example:hopper", "2=example:astronaut"]).images  # the README's cast
    assert [Image.open(image).size for image in examples] == [(512, 600), (512, 512)]


def test_cast_model_per_mode_and_limits():
    assert cast_model("animate", "auto", 3) == "multianimate"
    assert cast_model("replace", "auto", 3) == "animate"
    with pytest.raises(WanimateError, match=r"Wan2\.2-Animate-14B animates one character"):
        cast_model("animate", "animate", 2)
    with pytest.raises(WanimateError, match="MultiAnimate has no replace mode"):
        cast_model("replace", "multianimate", 2)
    with pytest.raises(WanimateError, match=f"8 characters cast but .* at most {MAX_CHARACTERS}"):
        cast_model("animate", "auto", 8)


def test_resolve_by_id_and_left_to_right(scene):
    left_to_right = resolve_cast(cast_request(["a.png", "b.png"]), scene.people, "scene.mp4")
    xs = {p.id: scene.people.people[p.id].boxes[0, 0] for p in scene.people.people}
    leftmost = sorted(xs, key=xs.get)[:2]
    assert [m.person for m in left_to_right] == sorted(leftmost)
    assert {m.person: m.image.name for m in left_to_right}[leftmost[0]] == "a.png"
    with pytest.raises(WanimateError, match=r"^cast id 7 never appears in scene.mp4; the tracked people are 0, 1, 2"):
        resolve_cast(cast_request({0: "a.png", 7: "b.png"}), scene.people, "scene.mp4")
    with pytest.raises(WanimateError, match="4 character images but 3 people in the first frame"):
        resolve_cast(cast_request(["a", "b", "c", "d"]), scene.people, "scene.mp4")


def _colour_pixels(frame: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    return np.abs(frame.astype(int) - np.array(colour)).max(axis=2) < tolerance


def test_composed_reference_places_each_character_on_its_performer(animate_cast, scene):
    from wanimate.materials.characters import load_character_materials

    materials = load_character_materials(animate_cast.root)
    assert materials.characters == 2
    reference = materials.reference()
    arrays = animate_cast.arrays()
    for i in range(2):
        ys, xs = np.nonzero(_colour_pixels(reference, CHARACTER_COLOURS[i]))
        x0, y0, x1, y1 = arrays.boxes[i, 0]
        assert x0 - 4 <= np.median(xs) <= x1 + 4 and y0 - 4 <= np.median(ys) <= y1 + 4
        # frame-0 mask of character i is performer i's pixels
        mask = next(materials.masks[i].open())
        assert np.array_equal(mask[..., 0] > 127, scene.people.labels[0] == i + 1)
    index = load_cast(animate_cast.root)
    assert [(m.person, m.image.name) for m in index.members] == [(0, "character_0.png"), (1, "character_1.png")]


def _follows(frames: list[np.ndarray], scene, colours, tolerance: int) -> None:
    """Character i's pixels lie over performer i in every frame, never nearer another performer.

    Frames where the character is mostly hidden behind a nearer one, or where two performers are
    at the same place (the very crossing), say nothing about identity and are skipped.
    """
    people = scene.people.people
    for t, frame in enumerate(frames):
        centres = [np.mean(people[j].boxes[t, [0, 2]]) for j in range(len(colours))]
        for i, colour in enumerate(colours):
            xs = np.nonzero(_colour_pixels(frame, colour, tolerance))[1]
            if len(xs) < 20:
                assert any(abs(centres[i] - c) < 20 for j, c in enumerate(centres) if j != i), (t, i)
                continue
            distances = np.abs(np.array(centres) - np.median(xs))
            others = np.delete(distances, i)
            if others.min() - distances[i] > 6 or distances[i] < 3:
                assert distances[i] < others.min(), f"frame {t}: character {i} is over another performer"
            else:
                assert abs(others.min() - distances[i]) <= 6  # the crossing itself


def test_preview_animate_each_character_follows_its_performer(animate_cast, scene, tmp_path):
    from wanimate.preview.cast import render_cast_preview

    out = render_cast_preview(animate_cast, tmp_path / "animate.mp4", progress=False)
    frames = list(iter_frames(out))
    assert len(frames) == 10 and frames[0].shape == (*SIZE, 3)
    _follows(frames, scene, CHARACTER_COLOURS[:2], 40)
    # performer 1 is nearer: at the crossing its character covers character 0
    crossing = frames[5]
    assert _colour_pixels(crossing, CHARACTER_COLOURS[1]).sum() > _colour_pixels(crossing, CHARACTER_COLOURS[0]).sum()


def test_preview_replace_keeps_bystanders_and_follows(replace_cast, scene, tmp_path):
    from wanimate.preview.cast import render_cast_preview

    out = render_cast_preview(replace_cast, tmp_path / "replace.mp4", progress=False)
    frames = list(iter_frames(out))
    _follows(frames, scene, CHARACTER_COLOURS[:2], 70)
    for t, frame in enumerate(frames):
        labels = scene.people.labels[t]
        bystander = labels == 3  # person 2, not cast, nearest of all: drawn over the characters
        assert np.abs(frame[bystander].astype(int) - COLOURS[2]).max(axis=1).mean() < 25
        for i in range(2):  # the performers themselves are gone
            gone = (labels == i + 1) & ~np.isin(labels, [3])
            assert _colour_pixels(frame, COLOURS[i], 30)[gone].mean() < 0.2


def test_bad_inputs_write_nothing(inputs, tmp_path):
    _, kw = inputs
    late = crossing_scene(2, frames=8, size=SIZE, late=1)
    first_frame = r"^cast id 1 is not in the first frame of scene.mp4 \(first seen at frame 3\)"
    with pytest.raises(WanimateError, match=first_frame):
        write_cast(tmp_path / "late", CastInputs(mode="animate", **{**kw, "people": late.people}))
    hidden = crossing_scene(2, frames=8, size=SIZE)
    hidden.people.labels[hidden.people.labels == 2] = 0  # person 1 tracked but never seen
    with pytest.raises(WanimateError, match=r"^cast id 1 is never visible in scene.mp4"):
        write_cast(tmp_path / "hidden", CastInputs(mode="replace", **{**kw, "people": hidden.people}))
    assert not any(tmp_path.iterdir())


def test_three_characters_each_follow_their_own_performer(inputs, scene, tmp_path):
    from cast_fixtures import character

    from wanimate.preview.cast import render_cast_preview

    root, kw = inputs
    chars = [*kw["characters"], character(2, root)]
    members = [CastMember(i, c.image) for i, c in enumerate(chars)]
    cast = write_cast(
        tmp_path / "three",
        CastInputs(mode="animate", background="neutral", **{**kw, "members": members, "characters": chars}),
    )
    assert len(cast.members) == 3
    frames = list(iter_frames(render_cast_preview(cast, tmp_path / "three.mp4", progress=False)))
    _follows(frames, scene, CHARACTER_COLOURS, 40)
