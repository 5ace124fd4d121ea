"""Choose the performer and follow them through the clip.

Backends report everyone in every frame. Following one person happens offline, over the whole
clip, in three steps:

1. **tracklets**: detections are linked frame to frame by a cost mixing box overlap with a
   motion-predicted box, keypoint distance and size change (greedy, cheapest pair first). The
   prediction carries each person's velocity through crossings and short occlusions.
2. **choice**: ``person=N`` takes the N-th person from the left in the first frame that has
   people; ``"auto"`` takes the tracklet with the highest main-performer score
   ``sum over its frames of sqrt(box area / frame area) * (1 - 0.5 * |box centre x - frame
   centre x| / (frame width / 2))``: big, central and present for long all raise it.
3. **chaining**: someone who leaves and comes back starts a new tracklet; the chosen one is
   extended by the tracklet that starts next after it ends (and, for ``"auto"``, the one that
   ends last before it starts), never by someone visible at the same time.

Gaps of up to ``max_gap`` frames are filled by linear interpolation; longer ones are missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from wanimate.errors import WanimateError
from wanimate.preprocess.keypoints import NUM_KEYPOINTS
from wanimate.preprocess.pose.base import PersonPose

_BODY = slice(0, 23)  # body + feet: the points every backend reports reliably
_MAX_COST = 0.8
_MIN_CHAIN_LEN = 3  # shorter tracklets are likely false detections, not a returning person


@dataclass
class Track:
    """The followed person, one row per frame."""

    keypoints: np.ndarray  # (T, 133, 3); interpolated over short gaps; zeros where missing
    detected: np.ndarray  # (T,) bool: really detected in this frame
    interpolated: np.ndarray  # (T,) bool
    missing: np.ndarray  # (T,) bool: long gaps, score 0
    boxes: np.ndarray  # (T, 4) x0, y0, x1, y1; zeros where missing
    summary: dict = field(default_factory=dict)  # JSON-able: who was chosen, how, and the counts


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
    + 0.2 x |log area ratio| (capped at 1). The distance gate widens a little per lost frame.
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
    return cost if cost < _MAX_COST else None


def build_tracklets(detections: Sequence[list[PersonPose]], patience: int) -> list[_Tracklet]:
    """Link detections over time; a tracklet unseen for more than ``patience`` frames ends."""
    finished: list[_Tracklet] = []
    active: list[_Tracklet] = []
    for t, people in enumerate(detections):
        still = [tr for tr in active if t - tr.frames[-1] <= patience]
        finished += [tr for tr in active if t - tr.frames[-1] > patience]
        active = still
        pairs = []
        for i, tracklet in enumerate(active):
            for j, person in enumerate(people):
                cost = match_cost(tracklet, person, t)
                if cost is not None:
                    pairs.append((cost, i, j))
        used_tracklets: set[int] = set()
        used_people: set[int] = set()
        for _, i, j in sorted(pairs):
            if i not in used_tracklets and j not in used_people:
                active[i].add(t, people[j])
                used_tracklets.add(i)
                used_people.add(j)
        for j, person in enumerate(people):
            if j not in used_people:
                fresh = _Tracklet()
                fresh.add(t, person)
                active.append(fresh)
    return finished + active


def performer_score(tracklet: _Tracklet, height: int, width: int) -> float:
    """Big, central and long-present: see the module docstring for the formula."""
    total = 0.0
    for person in tracklet.people:
        size = np.sqrt(_area(person.bbox) / (width * height))
        off_center = min(1.0, abs(_center(person.bbox)[0] - width / 2) / (width / 2))
        total += size * (1 - 0.5 * off_center)
    return float(total)


def _chain(start: _Tracklet, tracklets: list[_Tracklet], backward: bool) -> list[_Tracklet]:
    """The chosen tracklet plus the ones that continue it after (or before) it is out of frame.

    The next link is the tracklet that starts soonest after the current one ends (ends latest
    before it starts, going backward), then the one nearest to where the person was last seen.
    """
    chain = [start]
    candidates = [t for t in tracklets if len(t.frames) >= _MIN_CHAIN_LEN and t is not start]
    while True:
        edge = chain[-1]
        if backward:
            options = [
                (-t.frames[-1], _gap_distance(t.people[-1], edge.people[0]), i)
                for i, t in enumerate(candidates)
                if t.frames[-1] < edge.frames[0]
            ]
        else:
            options = [
                (t.frames[0], _gap_distance(edge.people[-1], t.people[0]), i)
                for i, t in enumerate(candidates)
                if t.frames[0] > edge.frames[-1]
            ]
        if not options:
            return chain
        chain.append(candidates[min(options)[2]])


def _gap_distance(a: PersonPose, b: PersonPose) -> float:
    return float(np.linalg.norm(_center(a.bbox) - _center(b.bbox)))


def _parse_person(person: str | int) -> int | None:
    if isinstance(person, int):
        index = person
    elif person == "auto":
        return None
    elif person.strip().isdigit():
        index = int(person)
    else:
        raise WanimateError(f"--person must be 'auto' or a number (0 = leftmost person), not {person!r}")
    if index < 0:
        raise WanimateError(f"--person must be 0 or more (0 = leftmost person), not {index}")
    return index


def follow_person(
    detections: Sequence[list[PersonPose]],
    frame_size: tuple[int, int],
    person: str | int = "auto",
    max_gap: int = 8,
) -> Track:
    """Pick one performer from per-frame detections and follow them; ``frame_size`` is (H, W)."""
    height, width = frame_size
    n = len(detections)
    wanted = _parse_person(person)
    first = next((t for t, people in enumerate(detections) if people), None)
    if first is None:
        raise WanimateError(
            f"no person found in any of the {n} frames scanned; use a video where the performer's body is visible"
        )
    tracklets = build_tracklets(detections, patience=max(2 * max_gap, 15))
    left_to_right = sorted(detections[first], key=lambda p: _center(p.bbox)[0])
    owner = {id(p): tr for tr in tracklets for p in tr.people}
    scores = {id(tr): performer_score(tr, height, width) for tr in tracklets}
    if wanted is None:
        chosen = max(tracklets, key=lambda tr: scores[id(tr)])
        chain = _chain(chosen, tracklets, backward=True)[::-1] + _chain(chosen, tracklets, backward=False)[1:]
        how = "auto: highest main-performer score (size x centrality, summed over frames present)"
    else:
        if wanted >= len(left_to_right):
            raise WanimateError(
                f"--person {wanted} asked for, but frame {first} (the first with people) has only "
                f"{len(left_to_right)} (numbered 0 to {len(left_to_right) - 1} from the left)"
            )
        chosen = owner[id(left_to_right[wanted])]
        chain = _chain(chosen, tracklets, backward=False)
        how = f"person {wanted} from the left in frame {first}"
    track = _assemble(chain, n, max_gap)
    in_first = [i for i, p in enumerate(left_to_right) if owner[id(p)] in chain]
    ranked = sorted(scores.values(), reverse=True)
    track.summary = {
        "person": in_first[0] if in_first else None,
        "selection": "auto" if wanted is None else "index",
        "how": how,
        "first_frame_with_people": first,
        "people_in_first_frame": len(left_to_right),
        "performer_score": round(scores[id(chosen)], 3),
        "runner_up_score": round(ranked[1], 3) if len(ranked) > 1 else None,
        "people_seen": sum(1 for tr in tracklets if len(tr.frames) >= _MIN_CHAIN_LEN) or len(tracklets),
        "max_people_in_frame": max(len(p) for p in detections),
        "tracklets_joined": len(chain),
        "frames_detected": int(track.detected.sum()),
        "frames_interpolated": int(track.interpolated.sum()),
        "frames_missing": int(track.missing.sum()),
        "max_gap": max_gap,
    }
    return track


def _assemble(chain: list[_Tracklet], n: int, max_gap: int) -> Track:
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
    missing = ~(detected | interpolated)
    return Track(keypoints, detected, interpolated, missing, boxes)
