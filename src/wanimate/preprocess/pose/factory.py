"""Choose a pose backend by name; heavy imports stay inside so listing names is free."""

from __future__ import annotations

from pathlib import Path

from wanimate.errors import WanimateError
from wanimate.preprocess.pose.base import PoseBackend

BACKENDS = ("mediapipe", "vitpose")


def make_backend(
    name: str = "mediapipe",
    *,
    models_dir: Path | None = None,
    device: str = "cpu",
    video: bool = True,
    max_people: int = 8,
    finder: str = "tiles",
    min_face: float | None = None,
) -> PoseBackend:
    """A ready backend.

    ``video=True`` lets a backend carry state between consecutive calls (mediapipe follows each
    person's landmarks instead of re-detecting); use False for unrelated images such as the
    character image. ``models_dir`` is the official ``process_checkpoint`` folder (vitpose only).
    ``finder`` and ``min_face`` (the smallest face to look for, px; default a sixtieth of the
    frame height) choose how the mediapipe backend finds people (see ``pose/finders.py``).
    """
    if name == "mediapipe":
        from wanimate.preprocess.pose.mediapipe_backend import MediaPipeBackend

        return MediaPipeBackend(video=video, max_people=max_people, finder=finder, min_face=min_face)
    if name == "vitpose":
        from wanimate.preprocess.pose.vitpose_backend import VitPoseBackend

        return VitPoseBackend(models_dir, device=device, max_people=max_people)
    raise WanimateError(f"unknown pose backend {name!r}; choose one of: {', '.join(BACKENDS)}")
