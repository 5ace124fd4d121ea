"""Choose a pose backend by name; heavy imports stay inside so listing names is free."""

from __future__ import annotations

from pathlib import Path

from wanimate.errors import WanimateError
from wanimate.preprocess.pose.base import PoseBackend

BACKENDS = ("mediapipe", "vitpose")


def make_backend(
    name: str = "mediapipe", *, models_dir: Path | None = None, device: str = "cpu", video: bool = True
) -> PoseBackend:
    """A ready backend.

    ``video=True`` lets a backend carry state between consecutive calls (mediapipe follows each
    person's landmarks instead of re-detecting); use False for unrelated images such as the
    character image. ``models_dir`` is the official ``process_checkpoint`` folder (vitpose only).
    """
    if name == "mediapipe":
        from wanimate.preprocess.pose.mediapipe_backend import MediaPipeBackend

        return MediaPipeBackend(video=video)
    if name == "vitpose":
        from wanimate.preprocess.pose.vitpose_backend import VitPoseBackend

        return VitPoseBackend(models_dir, device=device)
    raise WanimateError(f"unknown pose backend {name!r}; choose one of: {', '.join(BACKENDS)}")
