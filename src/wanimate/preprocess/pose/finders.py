"""Finding people who are not followed yet: the two strategies of the mediapipe backend.

* ``tiles`` (default): BlazePose's detector with every detection kept, over a pyramid of tiles
  (:mod:`wanimate.preprocess.pose.detector`), so people from a sixth of the frame height up to
  close-ups are found. The first frame gets the whole pyramid; later scans run the whole frame
  plus the next few tiles of a rotation (``budget``), so a full sweep is spread over many
  frames, and windows around recently lost people come first, so someone who walks out of
  view or behind an occluder is picked up again where they reappear.
* ``single``: mediapipe's own one-person Pose graph, repeated with each found person painted
  out, on the whole frame and two end squares. Cheaper for one or two large people, blind to
  people whose face is under about 45 px in a 720p frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from wanimate.preprocess.appearance import distance
from wanimate.preprocess.keypoints import NUM_KEYPOINTS
from wanimate.preprocess.pose.base import PersonPose
from wanimate.preprocess.pose.detector import PersonDetector, Window, pyramid
from wanimate.preprocess.pose.landmarker import Roi
from wanimate.preprocess.pose.mediapipe_mapping import BLAZEPOSE_FOR_COCO, landmarks_array, person_from_keypoints

FINDERS = ("tiles", "single")
LOOK_MATCH = 0.45  # appearance distance under which a person found in a blob's region is the one looked for
_GREY = (114, 114, 114)


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
    cv2.fillConvexPoly(image, hull, _GREY)
    cv2.polylines(image, [hull], True, _GREY, thickness=2 * grow)
    # No keypoint reaches the top of the head, and hair alone is enough for a re-detection.
    head = kp[:5][kp[:5, 2] > 0.2, :2]
    if len(head):
        center = head.mean(0)
        radius = 1.6 * float(np.ptp(head[:, 0])) if len(head) > 1 else 0.0
        if (kp[[5, 6], 2] > 0.2).all():
            radius = max(radius, 0.9 * float(np.linalg.norm(center - kp[[5, 6], :2].mean(0))))
        cv2.circle(image, tuple(int(v) for v in center), max(int(radius), grow), _GREY, -1)


def head_circle(kp: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Centre and radius (px) of a circle over someone's head and hair, or None without head points."""
    head = kp[:5][kp[:5, 2] > 0.2, :2]
    face = kp[23:91][kp[23:91, 2] > 0, :2]
    points = np.concatenate([head, face]) if len(face) else head
    if not len(points):
        return None
    center = points.mean(0)
    radius = 0.8 * float(max(np.ptp(points[:, 0]), np.ptp(points[:, 1]))) if len(points) > 1 else 0.0
    if (kp[[5, 6], 2] > 0.2).all():
        radius = max(radius, 0.7 * float(np.linalg.norm(center - kp[[5, 6], :2].mean(0))))
    return center, max(radius, 6.0)


def paint_head(image: np.ndarray, kp: np.ndarray) -> None:
    """Hide someone's head (what BlazePose keys on) in ``image``, whose pixels ``kp`` is in."""
    circle = head_circle(kp)
    if circle is not None:
        center, radius = circle
        cv2.circle(image, (int(center[0]), int(center[1])), int(radius), _GREY, -1)


def circle_meets_box(circle: tuple[np.ndarray, float], box: np.ndarray | tuple[float, ...]) -> bool:
    (cx, cy), r = circle
    return bool(box[0] - r < cx < box[2] + r and box[1] - r < cy < box[3] + r)


@dataclass(eq=False)
class Candidate:
    """Someone a finder saw: the region to run the landmark model on, and how to check it is them."""

    roi: Roi
    body: np.ndarray  # (4,) their rough box, frame pixels
    head: np.ndarray | None = None  # (4,) the detector's head-and-shoulders box (tiles)
    keypoints: np.ndarray | None = None  # (133, 3) BlazePose body points (single)
    score: float = 1.0
    look: np.ndarray | None = None  # the appearance of the lost person this region may be (blobs)

    def is_who(self, person: PersonPose) -> bool:
        """Whether a pose found from this candidate is really them.

        Their head must lie in the candidate's body square, and the detector's head box centre
        inside their box: a model that locked onto a neighbour in the region fails one of the two.
        A region found by its look must hold the person found, who must look like that.
        """
        if self.look is not None:
            cx, cy = (person.bbox[0] + person.bbox[2]) / 2, (person.bbox[1] + person.bbox[3]) / 2
            x0, y0, x1, y1 = _grown(self.body, 0.2)
            near = x0 <= cx <= x1 and y0 <= cy <= y1
            return near and person.appearance is not None and distance(person.appearance, self.look) < LOOK_MATCH
        if self.head is None:
            return True
        head = person.keypoints[:5]
        head = head[head[:, 2] > 0.3, :2]
        if not len(head):
            return False
        hx, hy = head.mean(0)
        x0, y0, x1, y1 = self.body
        cx, cy = (self.head[0] + self.head[2]) / 2, (self.head[1] + self.head[3]) / 2
        b0, c0, b1, c1 = _grown(person.bbox, 0.1)
        return bool(x0 <= hx <= x1 and y0 <= hy <= y1 and b0 <= cx <= b1 and c0 <= cy <= c1)


def _grown(box: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    w, h = box[2] - box[0], box[3] - box[1]
    return box[0] - margin * w, box[1] - margin * h, box[2] + margin * w, box[3] + margin * h


def known(candidate_head: np.ndarray, people: list[PersonPose]) -> bool:
    """Whether a detection is someone in ``people``: its head box holds their head, its centre lies in
    their head circle, or (without head points) its centre lies in their box."""
    cx, cy = (candidate_head[0] + candidate_head[2]) / 2, (candidate_head[1] + candidate_head[3]) / 2
    for person in people:
        x0, y0, x1, y1 = person.bbox
        head = person.keypoints[:5]
        head = head[head[:, 2] > 0.3, :2]
        circle = head_circle(person.keypoints)
        if circle is not None and np.hypot(cx - circle[0][0], cy - circle[0][1]) < circle[1]:
            return True
        if len(head):
            hx, hy = head.mean(0)
            if candidate_head[0] <= hx <= candidate_head[2] and candidate_head[1] <= hy <= candidate_head[3]:
                return True
        elif x0 <= cx <= x1 and y0 <= cy <= y1:
            return True
    return False


def recovery_window(height: int, width: int, box: np.ndarray) -> Window:
    """A square window around a box where someone may be, sized so their face is large enough for the detector."""
    side = int(min(max(2.5 * max(box[2] - box[0], box[3] - box[1]), 96), height, width))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(np.clip(cx - side / 2, 0, width - side))
    y0 = int(np.clip(cy - side / 2, 0, height - side))
    return (x0, y0, x0 + side, y0 + side)


class TileFinder:
    """Everyone at every size; see the module docstring for the schedule."""

    def __init__(self, *, min_face: float | None = None, budget: int = 3) -> None:
        self.min_face = min_face
        self.budget = max(0, budget)
        self._detector = PersonDetector()
        self._levels: list[list[Window]] | None = None
        self._rotation: list[Window] = []
        self._next = 0

    @property
    def runs(self) -> int:
        return self._detector.runs

    def _plan(self, height: int, width: int) -> list[list[Window]]:
        if self._levels is None:
            min_face = self.min_face if self.min_face is not None else height / 60
            self._levels = pyramid(height, width, min_face)
            # Interleave the levels, so coarse tiles (big people) come round more often than fine ones.
            finer = self._levels[1:]
            longest = max((len(level) for level in finer), default=0)
            self._rotation = [level[i * len(level) // longest] for i in range(longest) for level in finer if len(level)]
        return self._levels

    def start(self, frame: np.ndarray, *, full: bool, sweep: bool, around: list[np.ndarray]) -> None:
        """Start looking: the whole pyramid (``full``), or the whole frame and the next tiles of the
        rotation (``sweep``), plus a window around each box of ``around`` (where someone may reappear)."""
        height, width = frame.shape[:2]
        levels = self._plan(height, width)
        if full:
            windows = [w for level in levels for w in level]
        else:
            windows = list(dict.fromkeys(recovery_window(height, width, box) for box in around))
            if sweep:
                windows.insert(0, levels[0][0])
                for _ in range(min(self.budget, len(self._rotation))):
                    windows.append(self._rotation[self._next % len(self._rotation)])
                    self._next += 1
        self._detector.submit(frame, windows)

    def finish(self, frame: np.ndarray, people: list[PersonPose]) -> list[Candidate]:
        """The people found that are not among ``people`` (those already followed in this frame)."""
        found = self._detector.collect()
        return [
            Candidate(roi=Roi.from_axis(d.hip, d.edge), body=d.body, head=d.head, score=d.score)
            for d in found
            if not known(d.head, people)
        ]

    def close(self) -> None:
        self._detector.close()


class SingleFinder:
    """mediapipe's one-person Pose graph, repeated with each find painted out (the earlier strategy)."""

    def __init__(self) -> None:
        import mediapipe as mp

        self._scanner: Any = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
        self.runs = 0

    def start(self, frame: np.ndarray, *, full: bool, sweep: bool, around: list[np.ndarray]) -> None:
        self._wanted = full or sweep

    def finish(self, frame: np.ndarray, people: list[PersonPose]) -> list[Candidate]:
        if not self._wanted:
            return []
        h, w = frame.shape[:2]
        image = frame.copy()
        for person in people:
            paint_out(image, person.keypoints)
        found: list[Candidate] = []
        for x0, y0, x1, y1 in end_squares(h, w):
            while True:
                self.runs += 1
                result = self._scanner.process(np.ascontiguousarray(image[y0:y1, x0:x1]))
                if result.pose_landmarks is None:
                    break
                pose = landmarks_array(result.pose_landmarks, 33)[list(BLAZEPOSE_FOR_COCO)]
                kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
                kp[: len(pose), :2] = pose[:, :2] * (x1 - x0, y1 - y0) + (x0, y0)
                kp[: len(pose), 2] = pose[:, 2]
                paint_out(image, kp)
                person = person_from_keypoints(kp, w, h)
                if person is None:
                    break
                found.append(Candidate(roi=Roi.around_box(person.bbox), body=person.bbox, keypoints=person.keypoints))
        return found

    def close(self) -> None:
        self._scanner.close()


def end_squares(height: int, width: int) -> list[Window]:
    """The whole frame, then (for frames wider or taller than 4:3) two end-aligned squares."""
    windows = [(0, 0, width, height)]
    side = min(height, width)
    if 3 * max(height, width) > 4 * side:  # wider (or taller) than 4:3
        if width > height:
            windows += [(0, 0, side, height), (width - side, 0, width, height)]
        else:
            windows += [(0, 0, width, side), (0, height - side, width, height)]
    return windows


def make_finder(name: str, *, min_face: float | None = None) -> TileFinder | SingleFinder:
    if name == "tiles":
        return TileFinder(min_face=min_face)
    if name == "single":
        return SingleFinder()
    from wanimate.errors import WanimateError

    raise WanimateError(f"unknown person finder {name!r}; choose one of: {', '.join(FINDERS)}")
