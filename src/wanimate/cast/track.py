"""Everyone in the driving video, tracked once per run and kept in the work folder.

The tracking is preprocessing's (issue #11): one pass that follows every person with a stable id
and writes the ``people`` record with everyone's instance masks (``--people-media``). Its folder
is cached under a key of the video's content and the tracking options, so changing the cast or the
mode does not track again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from wanimate import __version__
from wanimate.cast.people import PeopleRecord
from wanimate.errors import WanimateError
from wanimate.hashing import file_sha256


def people_key(video: Path, options: dict) -> str:
    payload = {"video": file_sha256(video), "options": options, "v": __version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def track_people(
    video: Path,
    any_image: Path,
    work: Path,
    *,
    fps: float | None = None,
    area: tuple[int, int] = (1280, 720),
    pose_backend: str = "mediapipe",
    progress: bool = True,
) -> PeopleRecord:
    """The people record of ``video`` (tracked now, or read from the work folder's cache).

    ``any_image`` is one of the cast's images: preprocessing needs a character to write its
    one-performer files, which the cast does not use.
    """
    try:
        from wanimate.materials.people import PEOPLE_JSON, load_people
    except ImportError:
        raise WanimateError(
            "a cast needs multi-person tracking (the people record of issue #11), which this build of wanimate "
            "does not have"
        ) from None
    from wanimate.preprocess import preprocess

    options = {"fps": fps, "area": list(area), "backend": pose_backend}
    folder = work / f"people-{people_key(video, options)}"
    if not (folder / PEOPLE_JSON).is_file() or not (folder / "meta.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        preprocess(
            any_image,
            video,
            folder,
            mode="replace",
            fps=fps,
            area=area,
            backend=pose_backend,
            people_media=True,  # type: ignore[call-arg]
            progress=progress,
        )
    return load_people(folder)
