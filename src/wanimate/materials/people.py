"""The ``people`` record of a materials folder: everyone tracked, with one id each (docs/materials.md).

Multi-character stages read it; Animate-14B never does (it reads the single-performer files, which
stay as they were). Everything is in *source-frame* pixels (the decoded driving frames), the
frame the detections were made in; a stage that works at the output size applies its own fit.

* ``people.json``: the index (format, version, frame count, fps, source size, the chosen
  performer's id, and per person: frames detected/interpolated/missing, first and last frame,
  median height, and the file holding their face crops).
* ``people.npz``: ``ids`` (N,), ``keypoints`` (N, T, 133, 3) float32 (tracked and smoothed
  COCO-WholeBody), ``boxes`` (N, T, 4), ``state`` (N, T) uint8 (0 missing, 1 detected,
  2 interpolated), ``face_boxes`` (N, T, 4).
* ``people_masks.mp4`` (with ``--people-media``): an id-labelled mask video at the source size,
  lossless RGB, every channel = id + 1 where that person is, 0 elsewhere; masks are disjoint.
* ``people.png``: the contact sheet of ``wanimate people`` (each person's box and id on the
  busiest frame, and a thumbnail of each from their first frame), to choose a performer from.
* ``people/face_<id>.mp4`` (with ``--people-media``): 512x512 face crops of every person but the
  chosen one, whose crops are ``src_face.mp4``; black where the person is not present.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanimate.errors import WanimateError

PEOPLE_VERSION = 1
PEOPLE_JSON = "people.json"
PEOPLE_ARRAYS = "people.npz"
PEOPLE_MASKS = "people_masks.mp4"
PEOPLE_FACES = "people"
PEOPLE_SHEET = "people.png"
MISSING, DETECTED, INTERPOLATED = 0, 1, 2


@dataclass(frozen=True)
class PersonRecord:
    """One tracked person over the clip."""

    id: int
    keypoints: np.ndarray  # (T, 133, 3) source px
    boxes: np.ndarray  # (T, 4)
    state: np.ndarray  # (T,) uint8: MISSING, DETECTED or INTERPOLATED
    face_boxes: np.ndarray  # (T, 4)
    face_video: Path | None  # 512x512 crops, one per frame

    @property
    def present(self) -> np.ndarray:
        """(T,) bool: detected or interpolated."""
        return self.state != MISSING

    @property
    def frames(self) -> np.ndarray:
        """Indices of the frames the person is present in."""
        return np.flatnonzero(self.present)


@dataclass(frozen=True)
class People:
    """The whole record; ``people`` is ordered by id."""

    root: Path
    version: int
    num_frames: int
    fps: float
    source_size: tuple[int, int]  # (W, H)
    chosen: int
    people: list[PersonRecord]
    masks: Path | None
    sheet: Path | None = None  # people.png, the contact sheet

    def __getitem__(self, person_id: int) -> PersonRecord:
        for person in self.people:
            if person.id == person_id:
                return person
        raise WanimateError(f"{self.root} has no person {person_id}; ids are {[p.id for p in self.people]}")

    def iter_masks(self) -> Iterator[np.ndarray]:
        """(H, W) uint8 label maps, one per frame: 0 nobody, id + 1 a person (needs ``--people-media``)."""
        if self.masks is None:
            raise WanimateError(
                f"{self.root} has no {PEOPLE_MASKS}; preprocess with --people-media to write per-person masks"
            )
        from wanimate.video import iter_frames

        for frame in iter_frames(self.masks):
            yield frame[..., 0]


def write_people(
    root: Path,
    *,
    fps: float,
    source_size: tuple[int, int],
    chosen: int,
    tracks: list,
    face_boxes: list[np.ndarray],
    face_files: dict[int, str],
    masks: bool,
) -> None:
    """Write ``people.npz`` then ``people.json`` (atomically); ``tracks`` are smoothed PersonTracks."""
    n = len(tracks[0].detected) if tracks else 0
    state = np.zeros((len(tracks), n), np.uint8)
    for i, track in enumerate(tracks):
        state[i][track.detected] = DETECTED
        state[i][track.interpolated] = INTERPOLATED
    arrays = root / PEOPLE_ARRAYS
    np.savez(
        arrays,
        ids=np.array([t.id for t in tracks], np.int32),
        keypoints=np.stack([t.keypoints for t in tracks]).astype(np.float32),
        boxes=np.stack([t.boxes for t in tracks]).astype(np.float32),
        state=state,
        face_boxes=np.stack(face_boxes).astype(np.float32),
    )
    index = {
        "format": "wanimate-people",
        "version": PEOPLE_VERSION,
        "num_frames": n,
        "fps": float(fps),
        "source_size": list(source_size),
        "chosen": int(chosen),
        "arrays": PEOPLE_ARRAYS,
        "masks": PEOPLE_MASKS if masks else None,
        "sheet": PEOPLE_SHEET if (root / PEOPLE_SHEET).is_file() else None,
        "mask_value": "id + 1",
        "people": [
            {
                "id": int(t.id),
                "first_frame": t.first_frame,
                "last_frame": t.last_frame,
                "frames_detected": int(t.detected.sum()),
                "frames_interpolated": int(t.interpolated.sum()),
                "frames_missing": int(t.missing.sum()),
                "height_px": round(t.height, 1),
                "face": face_files.get(t.id),
            }
            for t in tracks
        ],
    }
    partial = root / f".{PEOPLE_JSON}.partial"
    partial.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(partial, root / PEOPLE_JSON)


def load_people(materials_dir: str | Path) -> People:
    """Read and check the ``people`` record of a materials folder."""
    root = Path(materials_dir)
    index_path = root / PEOPLE_JSON
    if not index_path.is_file():
        raise WanimateError(f"{root} has no {PEOPLE_JSON}; it was preprocessed before people were tracked (re-run)")
    try:
        index = json.loads(index_path.read_text())
        version = int(index["version"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise WanimateError(f"{index_path} is not a people record ({exc}); re-run preprocessing") from exc
    if index.get("format") != "wanimate-people" or version > PEOPLE_VERSION:
        raise WanimateError(
            f"{index_path} is people record version {version}; this wanimate reads up to {PEOPLE_VERSION}"
        )
    with np.load(root / index["arrays"]) as data:
        ids, keypoints, boxes = data["ids"], data["keypoints"], data["boxes"]
        state, face_boxes = data["state"], data["face_boxes"]
    listed = [entry["id"] for entry in index["people"]]
    if list(ids) != listed or keypoints.shape[:2] != (len(ids), index["num_frames"]):
        raise WanimateError(f"{root / index['arrays']} does not match {index_path}; re-run preprocessing")
    people = [
        PersonRecord(
            id=int(ids[i]),
            keypoints=keypoints[i],
            boxes=boxes[i],
            state=state[i],
            face_boxes=face_boxes[i],
            face_video=root / entry["face"] if entry.get("face") else None,
        )
        for i, entry in enumerate(index["people"])
    ]
    masks = root / index["masks"] if index.get("masks") else None
    sheet = root / index["sheet"] if index.get("sheet") else None
    width, height = index["source_size"]
    return People(
        root=root,
        version=version,
        num_frames=int(index["num_frames"]),
        fps=float(index["fps"]),
        source_size=(int(width), int(height)),
        chosen=int(index["chosen"]),
        people=people,
        masks=masks,
        sheet=sheet,
    )
