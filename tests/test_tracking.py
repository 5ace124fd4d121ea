"""Choosing and following one performer, on synthetic detections with known trajectories."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wanimate.errors import WanimateError
from wanimate.preprocess.keypoints import L_SHOULDER, NOSE, NUM_KEYPOINTS, R_ANKLE
from wanimate.preprocess.pose import PersonPose
from wanimate.preprocess.selection import follow_person

H, W = 480, 800
# A standing person: body + feet template in units of body height, centred on x = 0, top at y = 0.
_TEMPLATE = np.array(
    [
        (0, 0.08), (0.03, 0.06), (-0.03, 0.06), (0.06, 0.07), (-0.06, 0.07),  # face
        (0.12, 0.2), (-0.12, 0.2), (0.16, 0.36), (-0.16, 0.36), (0.18, 0.5), (-0.18, 0.5),  # arms
        (0.08, 0.52), (-0.08, 0.52), (0.09, 0.74), (-0.09, 0.74), (0.09, 0.95), (-0.09, 0.95),  # legs
        (0.11, 1.0), (0.13, 0.99), (0.08, 0.97), (-0.11, 1.0), (-0.13, 0.99), (-0.08, 0.97),  # feet
    ]
)  # fmt: skip


def person(cx: float, top: float, height: float, wave: float = 0.0) -> PersonPose:
    kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    kp[:23, :2] = _TEMPLATE * height + (cx, top)
    kp[9, 1] -= wave * height  # a raised left wrist makes poses differ between frames
    kp[:23, 2] = 0.9
    xy = kp[:23, :2]
    return PersonPose(kp, np.array([*xy.min(0), *xy.max(0)]), 0.9)


def centres(track_keypoints: np.ndarray) -> np.ndarray:
    return track_keypoints[:, :23, 0].mean(1)


def crossing(occlude: range = range(0)) -> list[list[PersonPose]]:
    frames = []
    for t in range(41):
        a = person(100 + 15 * t, 100, 300, wave=0.1)  # walks right
        b = person(700 - 15 * t, 110, 290)  # walks left
        frames.append([b] if t in occlude else [a, b])
    return frames


@pytest.mark.parametrize("occlude", [range(0), range(18, 23)])
def test_two_people_crossing_keep_their_identity(occlude: range) -> None:
    detections = crossing(occlude)
    right = follow_person(detections, (H, W), person=0)  # leftmost in frame 0: walks right
    left = follow_person(detections, (H, W), person=1)
    t = np.arange(41)
    np.testing.assert_allclose(centres(right.keypoints), 100 + 15 * t, atol=1.0)
    np.testing.assert_allclose(centres(left.keypoints), 700 - 15 * t, atol=1.0)
    assert right.interpolated.sum() == len(occlude) and not right.missing.any()
    assert right.summary["person"] == 0 and left.summary["person"] == 1
    assert right.summary["people_seen"] == 2


def test_leaving_and_returning_is_the_same_performer_and_the_gap_is_missing() -> None:
    detections = []
    for t in range(60):
        people = [person(720, 200, 120)]  # a small bystander at the edge, always there
        if t < 20 or t >= 40:
            people.append(person(400 + 2 * t, 60, 380, wave=0.05 * (t % 3)))
        detections.append(people)
    track = follow_person(detections, (H, W), person="auto", max_gap=8)
    assert track.detected[:20].all() and track.detected[40:].all()
    assert track.missing[20:40].all() and not track.interpolated.any()
    assert (track.keypoints[20:40] == 0).all() and (track.boxes[20:40] == 0).all()
    assert np.abs(centres(track.keypoints[40:]) - (400 + 2 * np.arange(40, 60))).max() < 1.0
    assert len(track.people) == 2  # the returning performer is one person, the bystander another
    assert track.summary["people_seen"] == 2
    assert track.summary["frames_missing"] == 20
    json.dumps(track.summary)


def test_short_gap_is_interpolated_linearly() -> None:
    detections = [[person(200 + 10 * t, 100, 300)] if not 10 <= t < 14 else [] for t in range(30)]
    track = follow_person(detections, (H, W), max_gap=8)
    assert track.interpolated[10:14].all() and track.interpolated.sum() == 4
    assert not track.missing.any()
    np.testing.assert_allclose(centres(track.keypoints), 200 + 10 * np.arange(30), atol=1e-3)
    assert (track.keypoints[10:14, NOSE, 2] > 0).all()


def test_long_gap_is_missing_not_smeared() -> None:
    detections = [[person(200, 100, 300)] if not 10 <= t < 30 else [] for t in range(40)]
    track = follow_person(detections, (H, W), max_gap=8)
    assert track.missing[10:30].all() and not track.missing[:10].any() and not track.missing[30:].any()
    assert (track.keypoints[10:30] == 0).all()


def test_auto_prefers_the_big_central_performer_over_an_early_edge_person() -> None:
    detections = [[person(60, 150, 150)] for _ in range(5)]  # someone at the edge comes first
    detections += [[person(60, 150, 150), person(420, 40, 420)] for _ in range(40)]
    track = follow_person(detections, (H, W))
    assert track.summary["person"] == 1  # ids follow first appearance: the early edge person is 0
    assert track.missing[:5].all()
    np.testing.assert_allclose(centres(track.keypoints[5:]), 420, atol=1e-3)
    assert track.summary["performer_score"] > track.summary["runner_up_score"]
    # shoulders come straight from the detections (left stays left)
    assert track.keypoints[10, L_SHOULDER, 0] > track.keypoints[10, L_SHOULDER + 1, 0]
    assert track.keypoints[10, R_ANKLE, 2] == pytest.approx(0.9)


def test_person_index_and_errors() -> None:
    detections = [[], [person(500, 100, 300), person(150, 100, 300)]] + [
        [person(500, 100, 300), person(150, 100, 300)] for _ in range(5)
    ]
    assert centres(follow_person(detections, (H, W), person="1").keypoints)[3] == pytest.approx(500, abs=1e-3)
    with pytest.raises(WanimateError, match="there is no person 2; 2 people were tracked"):
        follow_person(detections, (H, W), person=2)
    with pytest.raises(WanimateError, match="'auto' or a person id"):
        follow_person(detections, (H, W), person="tallest")
    with pytest.raises(WanimateError, match="no person found in any of the 7 frames scanned"):
        follow_person([[] for _ in range(7)], (H, W))
