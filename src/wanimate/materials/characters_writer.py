"""Write an N-character materials folder (format version 2) from frames already at the output size.

The writer knows nothing about detection or tracking: it takes the reference, the reference's
skeleton drawing and, frame by frame, the skeleton drawing of everyone plus one mask per character.
Masks are written losslessly (0/255), so what generation thresholds is exactly what was written.
``meta.json`` goes last: a folder without it is incomplete. Callers write into a staging folder and
rename it into place (:func:`wanimate.preprocess.characters.write_multianimate_materials`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.materials.characters import REF_POSE_FILE, mask_file
from wanimate.materials.folder import MATERIAL_FILES, AudioSource, MaterialsMeta, write_meta
from wanimate.video import VideoWriter


@dataclass
class CharacterFrame:
    """One frame at the output size: everyone's skeleton (H, W, 3) uint8 and the masks (N, H, W) bool."""

    pose: np.ndarray
    masks: np.ndarray


def write_character_folder(
    folder: Path,
    *,
    reference: np.ndarray,
    reference_pose: np.ndarray,
    frames: Iterable[CharacterFrame],
    characters: int,
    fps: float,
    audio: AudioSource | None = None,
    provenance: dict[str, Any] | None = None,
) -> MaterialsMeta:
    """Write the version-2 files into ``folder`` (which must exist); returns the meta.json written."""
    height, width = reference.shape[:2]
    if reference_pose.shape != reference.shape:
        raise WanimateError(f"the reference pose is {reference_pose.shape[:2]} but the reference is {(height, width)}")
    if height % 16 or width % 16:
        raise WanimateError(f"materials must be multiples of 16 on both sides, not {width}x{height}")
    Image.fromarray(reference).save(folder / MATERIAL_FILES["ref"])
    Image.fromarray(reference_pose).save(folder / REF_POSE_FILE)
    count = 0
    with ExitStack() as stack:
        pose_video = stack.enter_context(VideoWriter(folder / MATERIAL_FILES["pose"], fps))
        mask_videos = [
            stack.enter_context(VideoWriter(folder / mask_file(i), fps, lossless=True))
            for i in range(1, characters + 1)
        ]
        for frame in frames:
            if frame.masks.shape != (characters, height, width) or frame.pose.shape != (height, width, 3):
                raise WanimateError(
                    f"frame {count}: expected a {width}x{height} pose and {characters} masks, got "
                    f"{frame.pose.shape} and {frame.masks.shape}"
                )
            pose_video.write(frame.pose)
            for video, mask in zip(mask_videos, frame.masks, strict=True):
                video.write(np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=2))
            count += 1
    if count == 0:
        raise WanimateError("no frames to write")
    meta = MaterialsMeta(
        mode="animate",
        fps=float(fps),
        width=width,
        height=height,
        num_frames=count,
        audio=audio,
        provenance=provenance or {},
        characters=characters,
    )
    write_meta(folder, meta)
    return meta
