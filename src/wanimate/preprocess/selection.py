"""Choose the performer among the tracked people: by id, by a point on them, or automatically.

* ``person=N``: the person with id N (ids are numbered left to right among the people who
  appear first, so N is also "the N-th from the left in the first frame with people").
* ``person_at=(x, y)``: the person whose box holds that source-frame pixel in the first frame
  they appear in (the picture ``wanimate people`` draws); the smallest such box wins, since a
  nearer person's box can enclose a farther one.
* ``"auto"``: the person with the highest main-performer score
  ``sum over their detected frames of sqrt(box area / frame area) * (1 - 0.5 * |box centre x -
  frame centre x| / (frame width / 2))``: big, central and present for long all raise it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from wanimate.errors import WanimateError
from wanimate.preprocess.pose.base import PersonPose
from wanimate.preprocess.tracking import MIN_TRACKLET, PersonTrack, track_people


@dataclass
class Track:
    """The followed person, one row per frame, and everyone else who was tracked."""

    keypoints: np.ndarray  # (T, 133, 3); interpolated over short gaps; zeros where missing
    detected: np.ndarray  # (T,) bool: really detected in this frame
    interpolated: np.ndarray  # (T,) bool
    missing: np.ndarray  # (T,) bool: long gaps, score 0
    boxes: np.ndarray  # (T, 4) x0, y0, x1, y1; zeros where missing
    summary: dict = field(default_factory=dict)  # JSON-able: who was chosen, how, and the counts
    people: list[PersonTrack] = field(default_factory=list)  # everyone, by id
    chosen: int = 0  # the followed person's id


def performer_score(track: PersonTrack, height: int, width: int) -> float:
    """Big, central and long-present: see the module docstring for the formula."""
    boxes = track.boxes[track.detected]
    if not len(boxes):
        return 0.0
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0) * np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    off_center = np.minimum(1.0, np.abs((boxes[:, 0] + boxes[:, 2]) / 2 - width / 2) / (width / 2))
    return float((np.sqrt(area / (width * height)) * (1 - 0.5 * off_center)).sum())


def parse_person(person: str | int) -> int | None:
    """``"auto"`` -> None, else the id as an int; anything else is a one-line error."""
    if isinstance(person, int):
        index = person
    elif person == "auto":
        return None
    elif person.strip().isdigit():
        index = int(person)
    else:
        raise WanimateError(f"--person must be 'auto' or a person id (0 = leftmost), not {person!r}")
    if index < 0:
        raise WanimateError(f"--person must be 0 or more (0 = leftmost person), not {index}")
    return index


def _roster(people: list[PersonTrack]) -> str:
    return "; ".join(
        f"{p.id}: frames {p.first_frame}-{p.last_frame}, box {_box_text(p.boxes[p.first_frame])} "
        f"in frame {p.first_frame}"
        for p in people[:8]
    ) + ("; ..." if len(people) > 8 else "")


def _box_text(box: np.ndarray) -> str:
    return "({:.0f},{:.0f})-({:.0f},{:.0f})".format(*box)


def choose(
    people: list[PersonTrack],
    frame_size: tuple[int, int],
    person: str | int = "auto",
    person_at: tuple[float, float] | None = None,
) -> tuple[PersonTrack, str]:
    """The chosen person and a sentence saying how they were chosen."""
    height, width = frame_size
    if person_at is not None:
        x, y = person_at
        under = []
        for p in people:
            x0, y0, x1, y1 = p.boxes[p.first_frame]
            if x0 <= x <= x1 and y0 <= y <= y1:
                under.append(((x1 - x0) * (y1 - y0), p.id, p))
        if not under:
            raise WanimateError(
                f"--person-at {x:g},{y:g}: nobody is at that point in the first frame they appear in "
                f"(source pixels); people: {_roster(people)}"
            )
        chosen = min(under, key=lambda item: item[:2])[2]
        return chosen, f"person at ({x:g}, {y:g}) in their first frame ({chosen.first_frame})"
    wanted = parse_person(person)
    if wanted is None:
        chosen = max(people, key=lambda p: performer_score(p, height, width))
        return chosen, "auto: highest main-performer score (size x centrality, summed over frames present)"
    if wanted >= len(people):
        raise WanimateError(
            f"--person {wanted}: there is no person {wanted}; {len(people)} people were tracked "
            f"(ids 0 to {len(people) - 1}: {_roster(people)}); see `wanimate people VIDEO`"
        )
    return people[wanted], f"person id {wanted} (numbered left to right in the first frame they appear in)"


def follow_person(
    detections: Sequence[list[PersonPose]],
    frame_size: tuple[int, int],
    person: str | int = "auto",
    max_gap: int = 8,
    person_at: tuple[float, float] | None = None,
) -> Track:
    """Track everyone, pick one performer and return their track; ``frame_size`` is (H, W)."""
    height, width = frame_size
    n = len(detections)
    if not any(detections):
        raise WanimateError(
            f"no person found in any of the {n} frames scanned; use a video where the performer's body is visible"
        )
    people = track_people(detections, frame_size, max_gap=max_gap)
    if not people:
        raise WanimateError(
            f"no person was seen for {MIN_TRACKLET} frames or more in the {n} frames scanned; "
            "use a video where the performer's body is visible"
        )
    chosen, how = choose(people, frame_size, person, person_at)
    scores = sorted((performer_score(p, height, width) for p in people), reverse=True)
    first = next(t for t, found in enumerate(detections) if found)
    summary = {
        "person": chosen.id,
        "selection": "at" if person_at is not None else ("auto" if parse_person(person) is None else "index"),
        "how": how,
        "first_frame_with_people": first,
        "people_in_first_frame": len(detections[first]),
        "performer_score": round(performer_score(chosen, height, width), 3),
        "runner_up_score": round(scores[1], 3) if len(scores) > 1 else None,
        "people_seen": len(people),
        "max_people_in_frame": max(len(p) for p in detections),
        "frames_detected": int(chosen.detected.sum()),
        "frames_interpolated": int(chosen.interpolated.sum()),
        "frames_missing": int(chosen.missing.sum()),
        "max_gap": max_gap,
    }
    return Track(
        keypoints=chosen.keypoints,
        detected=chosen.detected,
        interpolated=chosen.interpolated,
        missing=chosen.missing,
        boxes=chosen.boxes,
        summary=summary,
        people=people,
        chosen=chosen.id,
    )
