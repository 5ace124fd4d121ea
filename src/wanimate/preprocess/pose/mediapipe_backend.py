"""Offline whole-body pose on CPU with mediapipe 0.10.21's bundled Holistic model.

mediapipe's landmark models are single-person, so several people are found in two steps:

* **scan**: a static-image BlazePose run finds one person, who is painted out, and the search
  repeats until nobody more is found (or ``max_people``). It searches the whole frame and then
  square windows along its long side: BlazePose's detector sees a 224x224 letterboxed image, so
  in a 1280x720 frame it misses people whose face is under ~90 px, and a 720x720 window about
  doubles its reach. Scans run on the first frame, every ``scan_interval`` frames and whenever
  nobody is followed, with the people already followed painted out first, so a routine scan is
  a few empty detector passes.
* **follow**: every person found gets a *slot*: its own Holistic graph in video mode, fed a crop
  around that person (so a small figure is large for the detector), with everyone else painted
  out on its first frame. Video mode then follows the person from the previous frame's landmarks
  instead of re-running the detector, which is what keeps one person at about 40 ms a frame on
  two CPU cores at 720p. A crop only moves when its person nears the border or shrinks inside it,
  because every move shifts the graph's own region of interest under it.

Holistic runs pose, face mesh and hands from one body estimate, which is cheaper than separate
Pose + FaceMesh + Hands graphs (Hands alone re-runs its palm detector) and keeps the hands
attached to the right wrists. Only model_complexity=1 is bundled in the wheel; 0 and 2 would try
to download at run time, so they are never used.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from wanimate.native_logs import quiet_native_logs
from wanimate.preprocess.keypoints import NUM_KEYPOINTS
from wanimate.preprocess.pose.base import PersonPose, check_frame
from wanimate.preprocess.pose.mediapipe_mapping import (
    BLAZEPOSE_FOR_COCO,
    holistic_to_coco,
    landmarks_array,
    person_from_keypoints,
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


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


def scan_windows(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """The whole frame, then (for frames wider or taller than 4:3) two end-aligned squares."""
    windows = [(0, 0, width, height)]
    side = min(height, width)
    if 3 * max(height, width) > 4 * side:  # wider (or taller) than 4:3
        if width > height:
            windows += [(0, 0, side, height), (width - side, 0, width, height)]
        else:
            windows += [(0, 0, width, side), (0, height - side, width, height)]
    return windows


def crop_around(box: np.ndarray, width: int, height: int, margin: float = 0.35) -> np.ndarray:
    """Integer crop grown by ``margin`` x the box's longer side on each side, clamped to the frame."""
    side = max(box[2] - box[0], box[3] - box[1], 32.0)
    grow = margin * side
    x0, y0 = max(0, int(box[0] - grow)), max(0, int(box[1] - grow))
    x1, y1 = min(width, int(np.ceil(box[2] + grow))), min(height, int(np.ceil(box[3] + grow)))
    return np.array([x0, y0, x1, y1], np.int64)


def next_crop(crop: np.ndarray, box: np.ndarray, width: int, height: int) -> np.ndarray:
    """Keep the crop while the person sits well inside it and fills a fair part of it.

    A side that lies on the frame border needs no room: the person cannot move past it, and an
    upper-body shot always touches the bottom edge.
    """
    fresh = crop_around(box, width, height)
    cw, ch = crop[2] - crop[0], crop[3] - crop[1]
    inset = 0.08 * np.array([cw, ch])
    low_ok = (box[:2] >= crop[:2] + inset) | (crop[:2] <= 0)
    high_ok = (box[2:] <= crop[2:] - inset) | (crop[2:] >= (width, height))
    inside = bool(low_ok.all() and high_ok.all())
    fresh_area = (fresh[2] - fresh[0]) * (fresh[3] - fresh[1])
    return crop if inside and cw * ch <= 2.0 * fresh_area else fresh


@dataclass
class _Slot:
    """One followed person: a Holistic graph with its own video-mode state, and its crop."""

    model: Any
    crop: np.ndarray


class MediaPipeBackend:
    """Whole-body COCO-133 poses for every person in the frame, from mediapipe Holistic."""

    name = "mediapipe"

    def __init__(self, *, video: bool = True, max_people: int = 4, scan_interval: int = 15) -> None:
        import mediapipe as mp

        self._mp = mp
        self.video = video
        self.max_people = max_people
        self.scan_interval = max(1, scan_interval)
        self._quiet = ExitStack()  # MediaPipe's native logs stay off the terminal while the graphs live
        self._quiet.enter_context(quiet_native_logs())
        self._scanner = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
        self._static: Any = None
        self._slots: list[_Slot] = []
        self._frame_index = -1

    def _holistic(self) -> Any:
        # Our own One-Euro smoothing runs later in frame pixels, over the chosen person's track.
        return self._mp.solutions.holistic.Holistic(
            static_image_mode=not self.video, model_complexity=1, smooth_landmarks=False
        )

    @staticmethod
    def _run(model: Any, image: np.ndarray, crop: np.ndarray) -> PersonPose | None:
        x0, y0, x1, y1 = (int(v) for v in crop)
        h, w = image.shape[:2]
        whole = (x0, y0, x1, y1) == (0, 0, w, h)
        view = image if whole else np.ascontiguousarray(image[y0:y1, x0:x1])
        kp = holistic_to_coco(model.process(view), x0, y0, x1 - x0, y1 - y0)
        return None if kp is None else person_from_keypoints(kp, w, h)

    def scan(self, frame: np.ndarray, known: list[PersonPose], limit: int) -> list[np.ndarray]:
        """Keypoints (body only, from BlazePose) of up to ``limit`` people not in ``known``."""
        h, w = frame.shape[:2]
        image = frame.copy()
        for person in known:
            paint_out(image, person.keypoints)
        found: list[np.ndarray] = []
        for x0, y0, x1, y1 in scan_windows(h, w):
            while len(found) < limit:
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
                found.append(person.keypoints)
        return found

    @staticmethod
    def _alone(frame: np.ndarray, target: int, everyone: list[np.ndarray]) -> np.ndarray:
        """The frame with everyone but ``everyone[target]`` painted out (no copy when alone)."""
        if len(everyone) == 1:
            return frame
        image = frame.copy()
        for i, kp in enumerate(everyone):
            if i != target:
                paint_out(image, kp)
        return image

    def _start(self, model: Any, frame: np.ndarray, target: int, everyone: list[np.ndarray]) -> tuple:
        """First run on a newly found person: a crop around them with everyone else painted out."""
        h, w = frame.shape[:2]
        box = everyone[target][everyone[target][:, 2] > 0.3, :2]
        crop = crop_around(np.array([*box.min(0), *box.max(0)]), w, h)
        return self._run(model, self._alone(frame, target, everyone), crop), crop

    def detect(self, frame: np.ndarray) -> list[PersonPose]:
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        self._frame_index += 1
        if not self.video:
            return self._detect_image(frame)
        people: list[PersonPose] = []
        kept: list[_Slot] = []
        for slot in self._slots:
            person = self._run(slot.model, frame, slot.crop)
            if person is None or _duplicate(person, people):
                slot.model.close()  # lost, or re-detected someone another slot already follows
                continue
            slot.crop = next_crop(slot.crop, person.bbox, w, h)
            people.append(person)
            kept.append(slot)
        self._slots = kept
        if not self._slots or self._frame_index % self.scan_interval == 0:
            everyone = [p.keypoints for p in people] + self.scan(frame, people, self.max_people - len(people))
            for i in range(len(people), len(everyone)):
                model = self._holistic()
                person, crop = self._start(model, frame, i, everyone)
                if person is None or _duplicate(person, people):
                    model.close()
                    continue
                people.append(person)
                self._slots.append(_Slot(model, next_crop(crop, person.bbox, w, h)))
        return people

    def _detect_image(self, frame: np.ndarray) -> list[PersonPose]:
        if self._static is None:
            self._static = self._holistic()
        everyone = self.scan(frame, [], self.max_people)
        people: list[PersonPose] = []
        for i in range(len(everyone)):
            person, _ = self._start(self._static, frame, i, everyone)
            if person is not None and not _duplicate(person, people):
                people.append(person)
        return people

    def close(self) -> None:
        for slot in self._slots:
            slot.model.close()
        self._slots = []
        if self._static is not None:
            self._static.close()
            self._static = None
        self._scanner.close()
        self._quiet.close()


def _duplicate(person: PersonPose, people: list[PersonPose]) -> bool:
    return any(_iou(person.bbox, p.bbox) > 0.6 for p in people)
