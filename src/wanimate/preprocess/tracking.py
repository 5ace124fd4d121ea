"""Follow everyone through the clip and give each person one id.

Backends report everyone in every frame. Identities are built offline, over the whole clip,
in two steps:

1. **tracklets**: detections are linked frame to frame: a backend's own follow number
   (``PersonPose.track``) continues its tracklet outright; the rest are assigned (Hungarian)
   by a cost mixing box overlap with a motion-predicted box, keypoint distance, size change
   and (when the backend saw their silhouette) appearance. The prediction carries each
   person's velocity through crossings and short occlusions, and appearance keeps two people
   who meet from swapping.
2. **identities**: someone who leaves and comes back, or is hidden longer than the tracklet
   patience, starts a new tracklet. Tracklets are joined into one person, in order of their
   start, when their appearance matches (colour histograms of the upper and lower body,
   :mod:`wanimate.preprocess.appearance`) and they are never visible at the same time;
   position only breaks ties. Tracklets under ``MIN_TRACKLET`` frames that join nobody are
   dropped as false detections.

Ids are numbered left to right among the people who appear first, then in order of
appearance (frame, then left to right). Choosing the performer is
:mod:`wanimate.preprocess.selection`'s job. Gaps of up to ``max_gap`` frames are filled by
linear interpolation; longer ones are missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from wanimate.preprocess.keypoints import NUM_KEYPOINTS
from wanimate.preprocess.pose.base import PersonPose

_BODY = slice(0, 23)  # body + feet: the points every backend reports reliably
_MAX_COST = 0.8


@dataclass(eq=False)  # holds arrays: identity is the only meaningful equality
class _Tracklet:
    frames: list[int] = field(default_factory=list)
    people: list[PersonPose] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def add(self, t: int, person: PersonPose) -> None:
        if self.frames:
            step = (_center(person.bbox) - _center(self.people[-1].bbox)) / (t - self.frames[-1])
            self.velocity = step if len(self.frames) == 1 else 0.6 * step + 0.4 * self.velocity
        self.frames.append(t)
        self.people.append(person)

    def predict(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Box and keypoints moved along the current velocity to frame ``t``."""
        shift = self.velocity * (t - self.frames[-1])
        last = self.people[-1]
        kp = last.keypoints.copy()
        kp[:, :2] += shift
        return last.bbox + np.tile(shift, 2), kp


def _center(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 1.0) * max(box[3] - box[1], 1.0))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = _area(a) + _area(b) - inter
    return float(inter / union)


def match_cost(tracklet: _Tracklet, person: PersonPose, t: int) -> float | None:
    """Cost of ``person`` continuing ``tracklet`` at frame ``t``; None when it cannot be them.

    0.4 x (1 - IoU with the predicted box) + 0.4 x keypoint distance / box size (capped at 1)
    + 0.2 x |log area ratio| (capped at 1), plus 0.5 x appearance distance when both have one.
    The distance gate widens a little per lost frame.
    """
    box, kp = tracklet.predict(t)
    scale = np.sqrt(_area(box))
    both = (kp[_BODY, 2] > 0.3) & (person.keypoints[_BODY, 2] > 0.3)
    if both.any():
        dist = np.linalg.norm(kp[_BODY][both, :2] - person.keypoints[_BODY][both, :2], axis=1).mean()
    else:
        dist = np.linalg.norm(_center(box) - _center(person.bbox))
    rel = dist / scale
    if rel > 1.0 + 0.1 * (t - tracklet.frames[-1] - 1):
        return None
    size = abs(np.log(_area(person.bbox) / _area(box)))
    cost = 0.4 * (1 - box_iou(box, person.bbox)) + 0.4 * min(rel, 1.0) + 0.2 * min(size, 1.0)
    last = tracklet.people[-1].appearance
    if last is not None and person.appearance is not None:
        cost += 0.5 * appearance_distance(last, person.appearance)
    return cost if cost < _MAX_COST else None


def build_tracklets(detections: Sequence[list[PersonPose]], patience: int) -> list[_Tracklet]:
    """Link detections over time; a tracklet unseen for more than ``patience`` frames ends.

    A backend that follows people itself numbers them (``PersonPose.track``): the same number
    in the next frame continues its tracklet outright. Everyone else is assigned by
    :func:`match_cost` with the Hungarian method (``scipy.optimize.linear_sum_assignment``),
    so one cheap pair cannot push two others into a worse swap.
    """
    from scipy.optimize import linear_sum_assignment

    finished: list[_Tracklet] = []
    active: list[_Tracklet] = []
    for t, people in enumerate(detections):
        finished += [tr for tr in active if t - tr.frames[-1] > patience]
        active = [tr for tr in active if t - tr.frames[-1] <= patience]
        free_people = set(range(len(people)))
        free_tracklets = set(range(len(active)))
        for i, tracklet in enumerate(active):
            number = tracklet.people[-1].track
            if number is None or tracklet.frames[-1] != t - 1:
                continue
            same = [j for j in free_people if people[j].track == number]
            if same:
                tracklet.add(t, people[same[0]])
                free_people.discard(same[0])
                free_tracklets.discard(i)
        rows, cols = sorted(free_tracklets), sorted(free_people)
        if rows and cols:
            costs = np.full((len(rows), len(cols)), _MAX_COST * 10)
            for a, i in enumerate(rows):
                for b, j in enumerate(cols):
                    cost = match_cost(active[i], people[j], t)
                    if cost is not None:
                        costs[a, b] = cost
            for a, b in zip(*linear_sum_assignment(costs), strict=True):
                if costs[a, b] < _MAX_COST:
                    active[rows[a]].add(t, people[cols[b]])
                    free_people.discard(cols[b])
        for j in sorted(free_people):
            fresh = _Tracklet()
            fresh.add(t, people[j])
            active.append(fresh)
    return finished + active


@dataclass
class PersonTrack:
    """One person over the whole clip, one row per frame (source-frame pixels)."""

    id: int
    keypoints: np.ndarray  # (T, 133, 3); interpolated over short gaps; zeros where missing
    boxes: np.ndarray  # (T, 4) x0, y0, x1, y1; zeros where missing
    detected: np.ndarray  # (T,) bool: really detected in this frame
    interpolated: np.ndarray  # (T,) bool
    appearance: np.ndarray | None = None  # mean appearance vector, when the backend gave one

    @property
    def missing(self) -> np.ndarray:
        return ~(self.detected | self.interpolated)

    @property
    def present(self) -> np.ndarray:
        return self.detected | self.interpolated

    @property
    def first_frame(self) -> int:
        return int(np.argmax(self.detected))

    @property
    def last_frame(self) -> int:
        return len(self.detected) - 1 - int(np.argmax(self.detected[::-1]))

    @property
    def height(self) -> float:
        """Median box height over the frames they were detected in (px)."""
        boxes = self.boxes[self.detected]
        return float(np.median(boxes[:, 3] - boxes[:, 1])) if len(boxes) else 0.0


def _mean_look(tracklets: list[_Tracklet]) -> np.ndarray | None:
    looks = [p.appearance for tr in tracklets for p in tr.people if p.appearance is not None]
    return np.mean(looks, axis=0).astype(np.float32) if looks else None


def _join_cost(group: list[_Tracklet], tracklet: _Tracklet, frame_size: tuple[int, int]) -> float | None:
    """How well ``tracklet`` continues a person made of ``group``; None when it cannot be them."""
    spans = [(tr.frames[0], tr.frames[-1]) for tr in group]
    a, b = tracklet.frames[0], tracklet.frames[-1]
    if any(not (b < s or a > e) for s, e in spans):
        return None  # both visible at once: two people
    mine, theirs = _mean_look([tracklet]), _mean_look(group)
    look = appearance_distance(mine, theirs) if mine is not None and theirs is not None else NO_LOOK
    before = [tr for tr in group if tr.frames[-1] < a]
    edge = max(before, key=lambda tr: tr.frames[-1]) if before else min(group, key=lambda tr: tr.frames[0])
    near = edge.people[-1] if before else edge.people[0]
    far = tracklet.people[0] if before else tracklet.people[-1]
    gap = float(np.linalg.norm(_center(near.bbox) - _center(far.bbox))) / max(frame_size)
    cost = look + 0.1 * gap
    return cost if look < MAX_LOOK else None


MIN_TRACKLET = 3  # shorter tracklets that join nobody are likely false detections
MAX_LOOK = 0.35  # appearance distance above which two tracklets are two people
NO_LOOK = 0.3  # assumed distance when a backend gives no appearance (position decides)


def track_people(
    detections: Sequence[list[PersonPose]], frame_size: tuple[int, int], max_gap: int = 8
) -> list[PersonTrack]:
    """Everyone in ``detections`` (one list per frame), each with one id; ``frame_size`` is (H, W)."""
    n = len(detections)
    tracklets = sorted(build_tracklets(detections, patience=max(2 * max_gap, 15)), key=lambda tr: tr.frames[0])
    groups: list[list[_Tracklet]] = []
    for tracklet in tracklets:
        options = [(cost, i) for i, g in enumerate(groups) if (cost := _join_cost(g, tracklet, frame_size)) is not None]
        if options:
            groups[min(options)[1]].append(tracklet)
        else:
            groups.append([tracklet])
    groups = [g for g in groups if sum(len(tr.frames) for tr in g) >= MIN_TRACKLET]

    def first_seen(group: list[_Tracklet]) -> tuple[int, float]:
        start = min(group, key=lambda tr: tr.frames[0])
        return start.frames[0], float(_center(start.people[0].bbox)[0])

    people = []
    for number, group in enumerate(sorted(groups, key=first_seen)):
        track = _assemble(group, n, max_gap)
        track.id = number
        track.appearance = _mean_look(group)
        people.append(track)
    return people


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    from wanimate.preprocess.appearance import distance

    return distance(a, b)


def _assemble(chain: list[_Tracklet], n: int, max_gap: int) -> PersonTrack:
    keypoints = np.zeros((n, NUM_KEYPOINTS, 3), np.float32)
    boxes = np.zeros((n, 4), np.float32)
    detected = np.zeros(n, bool)
    for tracklet in chain:
        for t, p in zip(tracklet.frames, tracklet.people, strict=True):
            keypoints[t], boxes[t], detected[t] = p.keypoints, p.bbox, True
    interpolated = np.zeros(n, bool)
    seen = np.flatnonzero(detected)
    for a, b in pairwise(seen):
        gap = b - a - 1
        if 0 < gap <= max_gap:
            w = (np.arange(1, gap + 1) / (gap + 1))[:, None, None]
            both = (keypoints[a, :, 2] > 0) & (keypoints[b, :, 2] > 0)
            mixed = (1 - w) * keypoints[a] + w * keypoints[b]
            keypoints[a + 1 : b] = np.where(both[None, :, None], mixed, 0.0)
            boxes[a + 1 : b] = (1 - w[:, :, 0]) * boxes[a] + w[:, :, 0] * boxes[b]
            interpolated[a + 1 : b] = True
    return PersonTrack(-1, keypoints, boxes, detected, interpolated)
