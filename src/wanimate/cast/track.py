"""Everyone in the driving video, tracked once per run and kept in the work folder.

The tracking is preprocessing's (issue #11): the same first pass as ``wanimate people`` (same pose
backend, ``--max-people`` and ``--finder``), so the ids on the people sheet are the ids ``--cast``
takes. It writes the ``people`` record with everyone's instance masks (``--people-media``). Its
folder is cached in the work folder under a key of the video's content and the tracking options,
so changing the cast or the mode does not track again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wanimate import __version__
from wanimate.hashing import file_sha256
from wanimate.workdir import MATERIALS_LAYOUT, WorkDir, remove_tree_if_owned

if TYPE_CHECKING:
    from wanimate.materials.people import People


@dataclass(frozen=True)
class Tracking:
    """The options that decide who is found and which id each gets (those of ``wanimate people``)."""

    fps: float | None = None
    area: tuple[int, int] = (1280, 720)
    backend: str = "mediapipe"
    max_people: int = 8
    finder: str = "tiles"

    def key(self, video: Path) -> str:
        payload = {"video": file_sha256(video), "options": vars(self), "v": __version__}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def track_people(video: Path, any_image: Path, work: WorkDir, tracking: Tracking, *, progress: bool = True) -> People:
    """The people record of ``video`` (tracked now, or read from the open work folder's cache).

    ``any_image`` is one of the cast's images: preprocessing needs a character to write its
    one-performer files, which the cast does not use.
    """
    from wanimate.materials.people import PEOPLE_JSON, load_people
    from wanimate.preprocess import preprocess

    folder = work.child(f"people-{tracking.key(video)}")
    if not (folder / PEOPLE_JSON).is_file() or not (folder / "meta.json").is_file():
        remove_tree_if_owned(folder, MATERIALS_LAYOUT)  # an incomplete folder is never reused
        preprocess(
            any_image,
            video,
            folder,
            mode="replace",
            fps=tracking.fps,
            area=tracking.area,
            pose_backend=tracking.backend,
            max_people=tracking.max_people,
            finder=tracking.finder,
            people_media=True,
            progress=progress,
        )
    return load_people(folder)
