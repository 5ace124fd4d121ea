"""Offline whole-body pose on CPU with mediapipe 0.10.21's bundled Holistic model.

mediapipe's landmark models are single-person, so several people are found in two steps:

* **scan**: a static-image BlazePose run on the whole frame finds one person; that person is
  painted out and the frame is scanned again, until nobody more is found (or ``max_people``).
  Scans run on the first frame, every ``scan_interval`` frames and whenever nobody is followed,
  with the people already followed painted out first, so a routine scan is one empty detector
  pass.
* **follow**: every person found gets a *slot*: its own Holistic graph in video mode. Its first
  frame is the scan's view with everyone else painted out, so its detector locks onto that
  person; from then on it sees the real frame and follows its person from the previous frame's
  landmarks instead of re-running the detector. That is what keeps one person at about 45 ms a
  frame on two CPU cores at 720p. Slots see whole frames: a crop that follows the person would
  shift the graph's own region of interest under it between frames, and saved no time when
  measured.

Holistic runs pose, face mesh and hands from one body estimate, which is cheaper than separate
Pose + FaceMesh + Hands graphs (Hands alone re-runs its palm detector) and keeps the hands
attached to the right wrists. Only model_complexity=1 is bundled in the wheel; 0 and 2 would try
to download at run time, so they are never used.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from wanimate.preprocess.keypoints import FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND
from wanimate.preprocess.pose.base import PersonPose, check_frame, drop_outside, keypoint_box

# COCO-WholeBody index -> BlazePose-33 landmark (body 0..16 then feet 17..22).
# BlazePose has no small toe: both toes take its single ``foot_index`` (the tip of the foot), so
# the official toe point (mean of big and small toe) lands on the foot tip.
BLAZEPOSE_FOR_COCO = (
    0, 2, 5, 7, 8,  # nose, left eye, right eye, left ear, right ear
    11, 12, 13, 14, 15, 16,  # shoulders, elbows, wrists (left first)
    23, 24, 25, 26, 27, 28,  # hips, knees, ankles
    31, 31, 29,  # left big toe, left small toe, left heel
    32, 32, 30,  # right big toe, right small toe, right heel
)  # fmt: skip

# iBUG-68 face point -> mediapipe face-mesh (468) vertex, the widely used correspondence.
FACE68_FROM_MESH = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw 0-16
    71, 63, 105, 66, 107,  # subject's right eyebrow 17-21
    336, 296, 334, 293, 301,  # subject's left eyebrow 22-26
    168, 197, 5, 4,  # nose bridge 27-30
    75, 97, 2, 326, 305,  # nostrils 31-35
    33, 160, 158, 133, 153, 144,  # subject's right eye 36-41
    362, 385, 387, 263, 373, 380,  # subject's left eye 42-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips 48-59
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips 60-67
)  # fmt: skip

# mediapipe gives no per-point score for hands and face mesh; a hand or face it returns has
# already passed the sub-model's own presence threshold (0.5), so its points share this score.
SUBMODEL_SCORE = 0.9
_HEAD_TORSO = (0, 5, 6)  # nose and shoulders: what every visible person shows
MIN_BODY_POINTS = 4  # a face alone (nose, eyes, ears) already gives five


def _landmarks(lms: Any, n: int) -> np.ndarray:
    """(n, 3) of normalised x, y and visibility."""
    return np.array([(p.x, p.y, p.visibility) for p in lms.landmark[:n]], np.float32)


def holistic_to_coco(result: Any, x0: float, y0: float, width: float, height: float) -> np.ndarray | None:
    """Map one Holistic result, computed on a (crop of a) frame at (x0, y0) of size width x height, to pixels."""
    if result.pose_landmarks is None:
        return None
    kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    scale = np.array([width, height], np.float32)
    offset = np.array([x0, y0], np.float32)
    pose = _landmarks(result.pose_landmarks, 33)
    body = pose[list(BLAZEPOSE_FOR_COCO)]
    kp[: len(BLAZEPOSE_FOR_COCO), :2] = body[:, :2] * scale + offset
    kp[: len(BLAZEPOSE_FOR_COCO), 2] = body[:, 2]
    if result.face_landmarks is not None:
        face = _landmarks(result.face_landmarks, 468)[list(FACE68_FROM_MESH)]
        kp[FACE, :2] = face[:, :2] * scale + offset
        kp[FACE, 2] = SUBMODEL_SCORE
    hands = [h for h in (result.left_hand_landmarks, result.right_hand_landmarks) if h is not None]
    for hand in hands:
        pts = _landmarks(hand, 21)[:, :2] * scale + offset
        # Attach each hand to the nearer body wrist, so "left" always agrees with the body's left.
        d_left = np.linalg.norm(pts[0] - kp[9, :2])
        d_right = np.linalg.norm(pts[0] - kp[10, :2])
        part = LEFT_HAND if d_left <= d_right else RIGHT_HAND
        if kp[part, 2].any():  # both hands claim one wrist: keep the first, it was named that side
            part = RIGHT_HAND if part == LEFT_HAND else LEFT_HAND
        kp[part, :2] = pts
        kp[part, 2] = SUBMODEL_SCORE
    return kp


def person_from_keypoints(kp: np.ndarray, width: int, height: int) -> PersonPose | None:
    """Frame-clipped keypoints, their box and a person score; None when too little is in the frame.

    BlazePose happily reports a body that is almost entirely beyond the border; fewer than
    ``MIN_BODY_POINTS`` confident body points inside the frame is not a usable person.
    """
    kp = drop_outside(kp, width, height)
    if (kp[: len(BLAZEPOSE_FOR_COCO), 2] >= 0.5).sum() < MIN_BODY_POINTS:
        return None
    box = keypoint_box(kp, 0.3)
    if box is None:
        box = keypoint_box(kp, 1e-6)
    if box is None:
        return None
    return PersonPose(kp, box, float(kp[list(_HEAD_TORSO), 2].mean()))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def paint_out(image: np.ndarray, kp: np.ndarray) -> None:
    """Hide a found person from the next scan: fill the hull of their points, grown by a margin.

    BlazePose's detector keys on the head and torso, so covering those stops a re-detection;
    filling the hull rather than the whole box leaves more of an overlapping neighbour visible.
    """
    pts = kp[kp[:, 2] > 0.2, :2]
    if len(pts) == 0:
        return
    box = np.array([*pts.min(0), *pts.max(0)])
    grow = max(8, int(0.12 * max(box[2] - box[0], box[3] - box[1])))
    hull = cv2.convexHull(pts.astype(np.int32))
    cv2.fillConvexPoly(image, hull, (114, 114, 114))
    cv2.polylines(image, [hull], True, (114, 114, 114), thickness=2 * grow)


class MediaPipeBackend:
    """Whole-body COCO-133 poses for every person in the frame, from mediapipe Holistic."""

    name = "mediapipe"

    def __init__(self, *, video: bool = True, max_people: int = 4, scan_interval: int = 15) -> None:
        import mediapipe as mp

        self._mp = mp
        self.video = video
        self.max_people = max_people
        self.scan_interval = max(1, scan_interval)
        self._scanner = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
        self._static: Any = None
        self._slots: list[Any] = []  # one Holistic graph per followed person
        self._frame_index = -1

    def _holistic(self) -> Any:
        # Our own One-Euro smoothing runs later, over the chosen person's whole track.
        return self._mp.solutions.holistic.Holistic(
            static_image_mode=not self.video, model_complexity=1, smooth_landmarks=False
        )

    @staticmethod
    def _run(model: Any, image: np.ndarray) -> PersonPose | None:
        h, w = image.shape[:2]
        kp = holistic_to_coco(model.process(image), 0, 0, w, h)
        return None if kp is None else person_from_keypoints(kp, w, h)

    def scan(self, frame: np.ndarray, known: list[PersonPose], limit: int) -> list[np.ndarray]:
        """Keypoints (BlazePose-derived, body only) of people not in ``known``, one at a time."""
        if limit <= 0:
            return []
        h, w = frame.shape[:2]
        image = frame.copy()
        for person in known:
            paint_out(image, person.keypoints)
        found: list[np.ndarray] = []
        for _ in range(limit):
            result = self._scanner.process(image)
            if result.pose_landmarks is None:
                break
            pose = _landmarks(result.pose_landmarks, 33)
            kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
            kp[: len(BLAZEPOSE_FOR_COCO), :2] = pose[list(BLAZEPOSE_FOR_COCO), :2] * (w, h)
            kp[: len(BLAZEPOSE_FOR_COCO), 2] = pose[list(BLAZEPOSE_FOR_COCO), 2]
            paint_out(image, kp)
            if person_from_keypoints(kp, w, h) is None:
                break
            found.append(kp)
        return found

    @staticmethod
    def _alone(frame: np.ndarray, target: int, others: list[np.ndarray]) -> np.ndarray:
        """The frame with everyone but ``others[target]`` painted out (no copy when alone)."""
        if len(others) == 1:
            return frame
        image = frame.copy()
        for i, kp in enumerate(others):
            if i != target:
                paint_out(image, kp)
        return image

    def detect(self, frame: np.ndarray) -> list[PersonPose]:
        frame = check_frame(frame)
        self._frame_index += 1
        if not self.video:
            return self._detect_image(frame)
        people: list[PersonPose] = []
        kept = []
        for model in self._slots:
            person = self._run(model, frame)
            if person is None or any(_iou(person.bbox, p.bbox) > 0.6 for p in people):
                model.close()  # lost, or re-detected someone another slot already follows
                continue
            people.append(person)
            kept.append(model)
        self._slots = kept
        if not self._slots or self._frame_index % self.scan_interval == 0:
            found = self.scan(frame, people, self.max_people - len(people))
            everyone = [p.keypoints for p in people] + found
            for i in range(len(people), len(everyone)):
                model = self._holistic()
                person = self._run(model, self._alone(frame, i, everyone))
                if person is None or any(_iou(person.bbox, p.bbox) > 0.6 for p in people):
                    model.close()
                    continue
                people.append(person)
                self._slots.append(model)
        return people

    def _detect_image(self, frame: np.ndarray) -> list[PersonPose]:
        if self._static is None:
            self._static = self._holistic()
        found = self.scan(frame, [], self.max_people)
        people: list[PersonPose] = []
        for i in range(len(found)):
            person = self._run(self._static, self._alone(frame, i, found))
            if person is not None and not any(_iou(person.bbox, p.bbox) > 0.6 for p in people):
                people.append(person)
        return people

    def close(self) -> None:
        for model in self._slots:
            model.close()
        self._slots = []
        if self._static is not None:
            self._static.close()
            self._static = None
        self._scanner.close()
