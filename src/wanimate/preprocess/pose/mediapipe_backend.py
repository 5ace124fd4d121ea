"""Offline whole-body pose on CPU with mediapipe 0.10.21's bundled Holistic model.

mediapipe's landmark models are single-person, so several people are found in two steps:

* **find**: a person finder (:mod:`wanimate.preprocess.pose.finders`) reports people who are not
  followed yet; by default BlazePose's detector over a pyramid of tiles, so small people in a
  wide shot are found as well as close-ups. It runs on the first frame, every ``scan_interval``
  frames, every few frames while someone was recently lost (around where they were lost), and
  on every frame while nobody is followed.
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

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from wanimate.preprocess.appearance import describe
from wanimate.preprocess.pose.base import PersonPose, check_frame
from wanimate.preprocess.pose.finders import Candidate, make_finder, paint_out
from wanimate.preprocess.pose.mediapipe_mapping import holistic_to_coco, person_from_keypoints


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


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
    box: np.ndarray | None = None  # the person's box in the last frame they were seen
    keypoints: np.ndarray | None = None  # their keypoints then, to paint them out of the others' crops
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # box centre, px per frame

    def moved(self, box: np.ndarray) -> None:
        if self.box is not None:
            step = (box[:2] + box[2:] - self.box[:2] - self.box[2:]) / 2
            self.velocity = 0.7 * self.velocity + 0.3 * step
        self.box = box


RETRY_SCORE = 0.7  # a confident detection whose first pose run failed is looked at again


class MediaPipeBackend:
    """Whole-body COCO-133 poses for every person in the frame, from mediapipe Holistic."""

    name = "mediapipe"

    def __init__(
        self,
        *,
        video: bool = True,
        max_people: int = 8,
        scan_interval: int = 5,
        finder: str = "tiles",
        min_face: float | None = None,
        recover_frames: int = 90,
    ) -> None:
        import mediapipe as mp

        self._mp = mp
        self.video = video
        self.max_people = max_people
        self.scan_interval = max(1, scan_interval)
        self.recover_frames = recover_frames
        self._finder = make_finder(finder, min_face=min_face)
        self._static: Any = None
        self._slots: list[_Slot] = []
        # (frame index, last box, velocity) of people lost lately, to look for them where they should be
        self._lost: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._frame_index = -1

    @property
    def finder_runs(self) -> int:
        """Detector passes the finder has made so far."""
        return self._finder.runs

    def _holistic(self) -> Any:
        # Our own One-Euro smoothing runs later in frame pixels, over each person's track.
        # The pose model's own silhouette (``enable_segmentation``) gives each person's true
        # extent and their pixels for appearance; it costs about a fifth more per person.
        return self._mp.solutions.holistic.Holistic(
            static_image_mode=not self.video,
            model_complexity=1,
            smooth_landmarks=False,
            enable_segmentation=True,
            smooth_segmentation=False,
        )

    @staticmethod
    def _run(model: Any, image: np.ndarray, crop: np.ndarray) -> PersonPose | None:
        x0, y0, x1, y1 = (int(v) for v in crop)
        h, w = image.shape[:2]
        whole = (x0, y0, x1, y1) == (0, 0, w, h)
        view = image if whole else np.ascontiguousarray(image[y0:y1, x0:x1])
        result = model.process(view)
        kp = holistic_to_coco(result, x0, y0, x1 - x0, y1 - y0)
        person = None if kp is None else person_from_keypoints(kp, w, h)
        if person is not None and getattr(result, "segmentation_mask", None) is not None:
            silhouette = own_silhouette(result.segmentation_mask > 0.5, person.keypoints, (x0, y0))
            if silhouette is not None:
                person.bbox = silhouette_box(silhouette, person, (x0, y0))
                person.appearance = describe(view, silhouette)
        return person

    def _start(
        self, model: Any, frame: np.ndarray, target: Candidate, others: list[Candidate], known: list[PersonPose]
    ) -> tuple[PersonPose | None, np.ndarray]:
        """First run on a newly found person: a tight crop around them with everyone else painted out."""
        h, w = frame.shape[:2]
        image = frame
        if others or known:
            image = frame.copy()
            for other in others:
                other.hide(image)  # only the single finder's keypoint candidates hide anything
            for person in known:
                paint_out(image, person.keypoints)
        crop = crop_around(target.body, w, h, margin=0.15)
        person = self._run(model, image, crop)
        if person is not None and not target.is_who(person):
            person = None  # the graph locked onto someone else in the crop
        return person, crop

    def _without_others(self, frame: np.ndarray, slot: _Slot) -> np.ndarray:
        """The frame with the other followed people whose last box reaches into this slot's crop painted out.

        A graph following one person re-detects inside its crop when it loses them, and would
        otherwise lock onto a neighbour who walks into it.
        """
        x0, y0, x1, y1 = slot.crop
        near = [
            other.keypoints
            for other in self._slots
            if other is not slot
            and other.keypoints is not None
            and other.box is not None
            and other.box[0] < x1
            and other.box[2] > x0
            and other.box[1] < y1
            and other.box[3] > y0
        ]
        if not near:
            return frame
        image = frame.copy()
        for keypoints in near:
            paint_out(image, keypoints)
        return image

    def _expected(self) -> list[np.ndarray]:
        """Where each recently lost person would be now, had they kept walking (and where they were)."""
        boxes = []
        for t, box, velocity in self._lost:
            boxes.append(box)
            shift = np.tile(velocity * (self._frame_index - t), 2)
            if np.abs(shift).max() > 0.5 * (box[3] - box[1]):
                boxes.append(box + shift)
        return boxes

    def _scan_now(self) -> tuple[bool, bool]:
        """Whether to look for new people in this frame, and whether over the whole pyramid."""
        index = self._frame_index
        if index == 0:
            return True, True
        if not self._slots:
            return True, index % self.scan_interval == 0
        if index % self.scan_interval == 0:
            return True, False
        return bool(self._lost) and index % 3 == 0, False

    def detect(self, frame: np.ndarray) -> list[PersonPose]:
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        self._frame_index += 1
        if not self.video:
            return self._detect_image(frame)
        people: list[PersonPose] = []
        kept: list[_Slot] = []
        for slot in self._slots:
            person = self._run(slot.model, self._without_others(frame, slot), slot.crop)
            if person is None or _duplicate(person, people):
                slot.model.close()  # lost, or re-detected someone another slot already follows
                if person is None and slot.box is not None:
                    self._lost.append((self._frame_index, slot.box, slot.velocity))
                continue
            slot.crop = next_crop(slot.crop, person.bbox, w, h)
            slot.moved(person.bbox)
            slot.keypoints = person.keypoints
            people.append(person)
            kept.append(slot)
        self._slots = kept
        self._lost = [lost for lost in self._lost if self._frame_index - lost[0] <= self.recover_frames]
        scan, full = self._scan_now()
        if scan and len(people) < self.max_people:
            candidates = self._finder.find(frame, people, full, self._expected())
            for i, candidate in enumerate(candidates):
                if len(people) >= self.max_people:
                    break
                model = self._holistic()
                others = [c for j, c in enumerate(candidates) if j != i]
                # everyone already placed in this frame is painted out, so the graph cannot lock onto them
                person, crop = self._start(model, frame, candidate, others, people)
                if person is None or _duplicate(person, people):
                    model.close()
                    if person is None and candidate.head is not None and candidate.score >= RETRY_SCORE:
                        self._lost.append((self._frame_index, _figure_from_head(candidate.head), np.zeros(2)))
                    continue
                people.append(person)
                self._slots.append(
                    _Slot(model, next_crop(crop, person.bbox, w, h), person.bbox, keypoints=person.keypoints)
                )
                self._lost = [lost for lost in self._lost if _iou(lost[1], person.bbox) < 0.1]
        return people

    def _detect_image(self, frame: np.ndarray) -> list[PersonPose]:
        if self._static is None:
            self._static = self._holistic()
        candidates = self._finder.find(frame, [], True, [])
        people: list[PersonPose] = []
        for i, candidate in enumerate(candidates[: self.max_people]):
            others = [c for j, c in enumerate(candidates) if j != i]
            person, _ = self._start(self._static, frame, candidate, others, [])
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
        self._finder.close()


def _figure_from_head(head: np.ndarray) -> np.ndarray:
    """A rough person box under a detector's head box, to look there again in the next scans."""
    x0, y0, x1, y1 = head
    return np.array([x0, y0, x1, y1 + 2 * (y1 - y0)], np.float32)


def own_silhouette(mask: np.ndarray, keypoints: np.ndarray, offset: tuple[int, int]) -> np.ndarray | None:
    """The connected part of a crop's person mask that holds this person's head and shoulders.

    The pose model's mask also lights up bits of clutter near the person; only the region
    under their own confident head and shoulder points is theirs.
    """
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    points = keypoints[[0, 1, 2, 5, 6]]
    points = points[points[:, 2] > 0.5, :2] - offset
    h, w = mask.shape
    votes = [labels[int(y), int(x)] for x, y in points if 0 <= x < w and 0 <= y < h and labels[int(y), int(x)] > 0]
    if not votes:
        return None
    return labels == np.bincount(votes).argmax()


def silhouette_box(silhouette: np.ndarray, person: PersonPose, offset: tuple[int, int]) -> np.ndarray:
    """The silhouette's box in frame pixels, grown to hold the confident head points (hair is thin)."""
    ys = np.flatnonzero(silhouette.any(axis=1))
    xs = np.flatnonzero(silhouette.any(axis=0))
    box = np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], np.float32) + np.tile(np.asarray(offset, np.float32), 2)
    head = person.keypoints[:5]
    head = head[head[:, 2] > 0.5, :2]
    if len(head):
        box[:2] = np.minimum(box[:2], head.min(0))
        box[2:] = np.maximum(box[2:], head.max(0))
    return box


def _duplicate(person: PersonPose, people: list[PersonPose]) -> bool:
    return any(_iou(person.bbox, p.bbox) > 0.6 for p in people)
