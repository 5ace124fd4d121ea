"""What a cast needs from tracking: everyone's track with a stable id, and their instance masks.

This is the shape of the ``people`` record of a materials folder (``wanimate.materials.people``,
docs/materials.md): every person's keypoints, boxes and per-frame state in source-frame pixels,
and an id-labelled mask video (0 = nobody, id + 1 = that person). The cast only reads it, so it is
written here as a protocol; anything with these attributes (the record, or a composite's ground
truth in a test) can drive a cast.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np


class TrackedPerson(Protocol):
    """One tracked person over the clip (source-frame pixels)."""

    @property
    def id(self) -> int: ...

    @property
    def keypoints(self) -> np.ndarray: ...  # (T, 133, 3)

    @property
    def boxes(self) -> np.ndarray: ...  # (T, 4) x0, y0, x1, y1

    @property
    def state(self) -> np.ndarray: ...  # (T,) 0 missing, 1 detected, 2 interpolated

    @property
    def face_boxes(self) -> np.ndarray: ...  # (T, 4)

    @property
    def present(self) -> np.ndarray: ...  # (T,) bool


class PeopleRecord(Protocol):
    """Everyone tracked in the driving video."""

    @property
    def num_frames(self) -> int: ...

    @property
    def fps(self) -> float: ...

    @property
    def source_size(self) -> tuple[int, int]: ...  # (W, H)

    @property
    def people(self) -> Sequence[TrackedPerson]: ...

    def iter_masks(self) -> Iterator[np.ndarray]: ...  # (H, W) uint8 label maps, 0 nobody, id + 1 a person


def person_by_id(people: PeopleRecord) -> dict[int, TrackedPerson]:
    return {int(p.id): p for p in people.people}


def first_frame(person: TrackedPerson) -> int | None:
    """The first frame the person is present in, or ``None`` when never."""
    frames = np.flatnonzero(person.present)
    return int(frames[0]) if frames.size else None


def depth(person: TrackedPerson, frame: int) -> float:
    """The depth cue of a person in a frame: the bottom of their box (lower on screen = nearer the camera).

    On a ground plane seen from standing height, whoever's feet are lower in the frame stands nearer;
    it is the cue the composites of the test suite are drawn by and needs no depth model.
    """
    return float(person.boxes[frame, 3])


def overall_depth(person: TrackedPerson) -> float:
    """The person's depth cue over the clip: the median box bottom over the frames they are present in."""
    frames = np.flatnonzero(person.present)
    return float(np.median(person.boxes[frames, 3])) if frames.size else float("-inf")
