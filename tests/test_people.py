"""Everyone tracked with one id: the detector pyramid, identities by appearance, the people record, choosing.

The composite tests use :mod:`wanimate.scenes` (real people cut from package photos, pasted on a
real street with known boxes); they share one pass over the scene (module fixtures).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wanimate.errors import WanimateError
from wanimate.materials.people import load_people, write_people
from wanimate.preprocess.appearance import describe, distance
from wanimate.preprocess.instances import label_people
from wanimate.preprocess.passes import frame_ranges
from wanimate.preprocess.pose.detector import box_iou, finest_side, pyramid
from wanimate.preprocess.selection import choose
from wanimate.preprocess.tracking import PersonTrack


def _track(person_id: int, n: int, box: tuple[float, float, float, float], frames: range) -> PersonTrack:
    detected = np.zeros(n, bool)
    detected[list(frames)] = True
    boxes = np.zeros((n, 4), np.float32)
    boxes[detected] = box
    keypoints = np.zeros((n, 133, 3), np.float32)
    keypoints[detected, 0, :] = ((box[0] + box[2]) / 2, box[1] + 5, 0.9)
    return PersonTrack(person_id, keypoints, boxes, detected, np.zeros(n, bool))


def test_pyramid_reaches_small_faces_and_covers_the_frame() -> None:
    levels = pyramid(576, 768, 9.6)
    assert levels[0] == [(0, 0, 768, 576)]
    finest = levels[-1]
    side = finest[0][2] - finest[0][0]
    assert side == finest_side(9.6) and 9.6 * 224 / side >= 14  # a 10 px face is 14 px for the detector
    covered = np.zeros((576, 768), bool)
    for x0, y0, x1, y1 in finest:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert len(pyramid(144, 176, 2.4)) >= 2


def test_people_record_round_trip(tmp_path: Path) -> None:
    tracks = [_track(0, 20, (10, 10, 50, 90), range(0, 20)), _track(1, 20, (60, 10, 90, 80), range(5, 12))]
    faces = [np.full((20, 4), i, np.float32) for i in range(2)]
    write_people(
        tmp_path,
        fps=20.0,
        source_size=(128, 96),
        chosen=1,
        tracks=tracks,
        face_boxes=faces,
        face_files={1: "src_face.mp4"},
        masks=False,
    )
    people = load_people(tmp_path)
    assert (people.version, people.num_frames, people.fps, people.source_size, people.chosen) == (
        1,
        20,
        20.0,
        (128, 96),
        1,
    )
    assert [p.id for p in people.people] == [0, 1]
    assert list(people[1].frames) == list(range(5, 12))
    np.testing.assert_array_equal(people[0].boxes, tracks[0].boxes)
    assert people[1].face_video == tmp_path / "src_face.mp4" and people[0].face_video is None
    with pytest.raises(WanimateError, match="no person 7"):
        people[7]
    with pytest.raises(WanimateError, match="--people-media"):
        next(people.iter_masks())
    with pytest.raises(WanimateError, match=r"no people\.json"):
        load_people(tmp_path / "nothing")


def test_choosing_by_point_and_bad_choices_are_one_clear_line() -> None:
    tracks = [_track(0, 10, (10, 10, 50, 90), range(10)), _track(1, 10, (30, 20, 45, 60), range(3, 10))]
    assert choose(tracks, (100, 100), person_at=(20, 50))[0].id == 0
    assert choose(tracks, (100, 100), person_at=(40, 40))[0].id == 1  # the smaller box inside the bigger one
    with pytest.raises(WanimateError, match=r"--person-at 95,5: nobody is at that point") as err:
        choose(tracks, (100, 100), person_at=(95, 5))
    assert "\n" not in str(err.value)
    with pytest.raises(WanimateError, match="there is no person 4; 2 people were tracked"):
        choose(tracks, (100, 100), person=4)
    assert frame_ranges(np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], bool)) == "frames 1-2, 4, 7-9"


def test_label_maps_are_disjoint_and_the_nearer_person_wins() -> None:
    class Boxes:
        def segment(self, frame: np.ndarray, keypoints: np.ndarray, box: np.ndarray) -> np.ndarray:
            mask = np.zeros(frame.shape[:2], bool)
            x0, y0, x1, y1 = (int(v) for v in box)
            mask[y0:y1, x0:x1] = True
            return mask

    frame = np.zeros((50, 50, 3), np.uint8)
    far = (0, np.zeros((133, 3)), np.array([5, 5, 30, 30]))
    near = (1, np.zeros((133, 3)), np.array([20, 10, 45, 40]))  # feet lower: in front
    labels = label_people(Boxes(), frame, [near, far])  # type: ignore[arg-type]
    assert labels[25, 25] == 2 and labels[8, 8] == 1 and labels[45, 5] == 0


@pytest.fixture(scope="module")
def wide() -> tuple:
    """The wide shot rendered in memory, and what the mediapipe backend finds in it."""
    from wanimate import scenes
    from wanimate.preprocess.pose import make_backend

    scene = scenes.wide_shot(frames=40)
    rendered = [scenes.render(scene, t) for t in range(scene.frames)]
    backend = make_backend("mediapipe", video=True)
    try:
        detections = [backend.detect(frame) for frame, _ in rendered]
    finally:
        backend.close()
    return scene, rendered, detections


def test_appearance_tells_the_composite_people_apart(wide: tuple) -> None:
    from wanimate import scenes

    scene, rendered, _ = wide
    frame, truth = rendered[0]
    looks = [describe(frame, truth.visible[i]) for i in range(len(scene.walkers))]
    later, truth_later = rendered[10]
    again = describe(later, truth_later.visible[0])
    assert looks[0] is not None and again is not None
    same = distance(looks[0], again)
    others = [distance(looks[0], look) for look in looks[1:] if look is not None]
    assert same < 0.2 < min(others)
    assert scenes.SPRITES


def test_wide_shot_people_are_found(wide: tuple) -> None:
    _, rendered, detections = wide
    hits = total = 0
    for (_, truth), found in zip(rendered, detections, strict=True):
        for box, seen in zip(truth.boxes, truth.visible, strict=True):
            if box is None or seen.sum() < 0.5 * (box[2] - box[0]) * (box[3] - box[1]) or box[3] - box[1] < 100:
                continue
            total += 1
            hits += any(box_iou(box, p.bbox) > 0.3 for p in found)
    # measured 68/104 (65%): the cameraman, whose camera hides his face, is rarely found (docs/pose.md)
    assert total > 60 and hits / total >= 0.6, f"recall {hits}/{total}"


@pytest.mark.xfail(strict=True, reason="known gap (issue #11): person 0 switches identity at the crossing")
def test_wide_shot_person_zero_keeps_their_id_through_the_crossing(wide: tuple) -> None:
    from wanimate.preprocess.selection import follow_person

    scene, rendered, detections = wide
    track = follow_person(detections, (scene.height, scene.width), person=0)
    # person 0 (leftmost in the first frame) is the astronaut, walking right, through the crossing
    truth_x = np.array([(t.boxes[0][0] + t.boxes[0][2]) / 2 if t.boxes[0] is not None else np.nan for _, t in rendered])
    got = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
    ok = track.detected & ~np.isnan(truth_x)
    assert ok.sum() > 20
    assert np.abs(got[ok] - truth_x[ok]).max() < 60  # never switched to another person
