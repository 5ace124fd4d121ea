"""The mediapipe backend on real people (package-shipped media) and its 133-point mapping."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from PIL import Image

from wanimate.preprocess.keypoints import (
    FACE,
    L_EYE,
    L_SHOULDER,
    L_WRIST,
    LEFT_HAND,
    NOSE,
    R_EYE,
    R_SHOULDER,
    R_WRIST,
    RIGHT_HAND,
)
from wanimate.preprocess.pose import PersonPose, make_backend
from wanimate.preprocess.pose.finders import end_squares
from wanimate.preprocess.pose.landmarker import ROI_SCALE, Roi
from wanimate.preprocess.pose.mediapipe_mapping import (
    BLAZEPOSE_FOR_COCO,
    FACE68_FROM_MESH,
    holistic_to_coco,
)
from wanimate.preprocess.selection import follow_person


@pytest.fixture(scope="module")
def astronaut(astronaut_image: Path) -> np.ndarray:
    return np.asarray(Image.open(astronaut_image).convert("RGB"))


@pytest.fixture(scope="module")
def astronaut_pose(astronaut: np.ndarray) -> PersonPose:
    backend = make_backend("mediapipe", video=False)
    try:
        people = backend.detect(astronaut)
    finally:
        backend.close()
    assert len(people) == 1
    return people[0]


def test_astronaut_body_is_plausible_and_left_is_the_persons_left(astronaut_pose: PersonPose) -> None:
    kp = astronaut_pose.keypoints
    assert kp[[NOSE, L_SHOULDER, R_SHOULDER], 2].min() > 0.9
    assert kp[NOSE, 1] < min(kp[L_SHOULDER, 1], kp[R_SHOULDER, 1])
    # she faces the camera: her left shoulder and eye are on the image's right
    assert kp[L_SHOULDER, 0] > 256 > kp[R_SHOULDER, 0]
    assert kp[L_EYE, 0] > kp[NOSE, 0] > kp[R_EYE, 0]
    x0, y0, x1, y1 = astronaut_pose.bbox
    assert y1 > kp[L_SHOULDER, 1]
    assert 0 <= x0 < kp[R_SHOULDER, 0] and kp[L_SHOULDER, 0] < x1 <= 511 and y0 < kp[NOSE, 1]


def test_astronaut_face_points_follow_the_ibug_layout(astronaut: np.ndarray, astronaut_pose: PersonPose) -> None:
    import mediapipe as mp

    face = astronaut_pose.keypoints[FACE]
    assert (face[:, 2] > 0).all()
    with mp.solutions.face_detection.FaceDetection(model_selection=1) as detector:
        box = detector.process(astronaut).detections[0].location_data.relative_bounding_box
    x0, y0 = box.xmin * 512, box.ymin * 512
    w, h = box.width * 512, box.height * 512
    inside = (
        (face[:, 0] > x0 - 0.15 * w)
        & (face[:, 0] < x0 + 1.15 * w)
        & (face[:, 1] > y0 - 0.25 * h)
        & (face[:, 1] < y0 + 1.15 * h)
    )
    assert inside.all(), "face landmarks outside the independently detected face box"
    x, y = face[:, 0], face[:, 1]
    assert x[0] < x[8] < x[16] and y[8] == y[:17].max()  # jaw from image-left, chin lowest
    assert x[36] < x[39] < x[42] < x[45]  # eye corners left to right
    assert y[17:27].max() < y[36:48].min()  # brows above eyes
    assert y[36:48].max() < y[30] < y[48:68].min()  # nose tip between eyes and mouth
    assert x[48] < x[51] < x[54] and y[51] < y[57]  # mouth corners, upper above lower lip
    assert abs(x[30] - astronaut_pose.keypoints[NOSE, 0]) < 0.1 * w


def test_mapping_tables() -> None:
    import mediapipe as mp

    assert len(FACE68_FROM_MESH) == len(set(FACE68_FROM_MESH)) == 68 and max(FACE68_FROM_MESH) < 468
    assert len(BLAZEPOSE_FOR_COCO) == 23
    names = [lm.name for lm in sorted(mp.solutions.pose.PoseLandmark, key=int)]
    coco = [names[i] for i in BLAZEPOSE_FOR_COCO[:17]]
    assert coco[5:7] == ["LEFT_SHOULDER", "RIGHT_SHOULDER"] and coco[15:] == ["LEFT_ANKLE", "RIGHT_ANKLE"]
    assert [names[i] for i in BLAZEPOSE_FOR_COCO[17:]] == ["LEFT_FOOT_INDEX"] * 2 + ["LEFT_HEEL"] + [
        "RIGHT_FOOT_INDEX"
    ] * 2 + ["RIGHT_HEEL"]
    # COCO-WholeBody hands: wrist, then thumb, fore, middle, ring, little finger, base to tip
    hand = [lm.name for lm in sorted(mp.solutions.hands.HandLandmark, key=int)]
    fingers = ["THUMB", "INDEX_FINGER", "MIDDLE_FINGER", "RING_FINGER", "PINKY"]
    assert hand[0] == "WRIST" and [n.split("_")[0] for n in hand[1::4]] == [f.split("_")[0] for f in fingers]
    assert all(hand[1 + 4 * i + 3].endswith("TIP") for i in range(5))


def test_regions_follow_mediapipes_alignment_and_stay_in_the_frame() -> None:
    upright = Roi.from_axis(np.array([100.0, 200.0]), np.array([100.0, 120.0]))  # circle point above the hip
    assert upright.rotation == pytest.approx(0.0) and upright.side == pytest.approx(2 * 80 * ROI_SCALE)
    leaning = Roi.from_axis(np.array([100.0, 200.0]), np.array([180.0, 200.0]))  # lying, head to the right
    assert leaning.rotation == pytest.approx(np.pi / 2)
    assert upright.bounds(1280, 720) == (0, 100, 200, 300)  # clipped at the left border
    turned = Roi(640.0, 360.0, 100.0, np.pi / 4)  # a square on its corner reaches sqrt(2) further
    x0, _, x1, _ = turned.bounds(1280, 720)
    assert x1 - x0 == pytest.approx(100 * np.sqrt(2), abs=2)
    assert Roi.around_box(np.array([10.0, 20.0, 50.0, 120.0])) == Roi(30.0, 70.0, 100 * ROI_SCALE)
    assert end_squares(720, 1280) == [(0, 0, 1280, 720), (0, 0, 720, 720), (560, 0, 1280, 720)]
    assert end_squares(480, 640) == [(0, 0, 640, 480)]


def _landmarks(points: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(landmark=[SimpleNamespace(x=x, y=y, visibility=v) for x, y, v in points])


def test_hands_attach_to_the_nearer_wrist_and_crop_offsets_apply() -> None:
    pose = np.zeros((33, 3))
    pose[:, 2] = 0.9
    pose[15, :2] = (0.8, 0.5)  # left wrist (person's left, image right)
    pose[16, :2] = (0.2, 0.5)
    hand_near_left = np.column_stack([np.full(21, 0.81), np.linspace(0.5, 0.3, 21), np.zeros(21)])
    # named "right" by the sub-model but sitting on the left wrist: it must land in LEFT_HAND
    result = SimpleNamespace(
        pose_landmarks=_landmarks(pose),
        face_landmarks=None,
        left_hand_landmarks=None,
        right_hand_landmarks=_landmarks(hand_near_left),
    )
    kp = holistic_to_coco(result, x0=100, y0=50, width=200, height=400)
    assert kp is not None
    assert kp[L_WRIST, :2] == pytest.approx((100 + 0.8 * 200, 50 + 0.5 * 400))
    assert kp[R_WRIST, 0] == pytest.approx(140)
    assert (kp[LEFT_HAND, 2] > 0).all() and (kp[RIGHT_HAND, 2] == 0).all()
    assert kp[LEFT_HAND][0, :2] == pytest.approx((262, 250))
    assert (kp[FACE, 2] == 0).all()


def test_two_people_side_by_side_are_both_found(astronaut: np.ndarray) -> None:
    pair = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))
    for video in (False, True):
        backend = make_backend("mediapipe", video=video)
        try:
            runs = [backend.detect(pair) for _ in range(3 if video else 1)]
        finally:
            backend.close()
        for people in runs:
            centres = sorted((p.bbox[0] + p.bbox[2]) / 2 for p in people)
            assert len(people) == 2 and centres[0] < 512 < centres[1]


def test_small_people_in_a_wide_frame_are_found(astronaut: np.ndarray) -> None:
    """Faces of ~50 px in 1280x720: too small for the whole-frame detector, found by the windows."""
    frame = np.full((720, 1280, 3), 90, np.uint8)
    small = np.asarray(Image.fromarray(astronaut).resize((200, 200)))
    frame[300:500, 200:400] = small
    frame[200:400, 800:1000] = small[:, ::-1]
    for video in (False, True):
        backend = make_backend("mediapipe", video=video)
        try:
            runs = [backend.detect(frame) for _ in range(3 if video else 1)]
        finally:
            backend.close()
        for people in runs:
            centres = sorted((p.bbox[0] + p.bbox[2]) / 2 for p in people)
            assert len(people) == 2 and 200 < centres[0] < 400 and 800 < centres[1] < 1000


def test_carphone_talking_man_is_followed(carphone_video: Path) -> None:
    backend = make_backend("mediapipe", video=True)
    try:
        with av.open(str(carphone_video)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        detections = [backend.detect(frame) for frame in frames]
    finally:
        backend.close()
    h, w = frames[0].shape[:2]
    track = follow_person(detections, (h, w))
    assert track.detected.mean() > 0.9
    kp = track.keypoints[track.detected]
    assert np.median(kp[:, NOSE, 1]) < np.median(kp[:, L_SHOULDER, 1])
    assert (kp[:, FACE, 2] > 0).mean() > 0.8
    assert track.summary["max_people_in_frame"] == 1
