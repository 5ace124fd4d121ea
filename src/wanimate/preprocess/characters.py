"""MultiAnimate materials from tracked people: every character's skeleton in one video, one mask each.

The input is the small interface a multi-person tracker provides (:class:`TrackedPeople`): per
frame, each tracked person's whole-body keypoints and instance mask in source pixels, people in a
fixed order. The order becomes the characters' labels (person 0 = character 1; later characters win
where masks overlap, as in MultiAnimate). The output size keeps the video's aspect at the target
``area`` (832x480 by default, MultiAnimate's training size); frames, keypoints and masks are
stretched to it exactly like the reference, which must show the same scene framing so that its
characters stand where the frame-0 masks are.

Everything is written to a hidden staging folder and renamed into place, and the finished folder is
validated (frame-0 masks against the reference's skeletons) before it is published.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from wanimate.errors import WanimateError
from wanimate.materials.characters import CharacterMaterials, load_character_materials
from wanimate.materials.characters_writer import CharacterFrame, write_character_folder
from wanimate.materials.folder import AudioSource
from wanimate.preprocess.dwpose_skeleton import draw_people
from wanimate.preprocess.sizing import Fit, size_for_area, stretch
from wanimate.preprocess.staging import staged_folder

DEFAULT_AREA = (832, 480)


@dataclass
class PeopleFrame:
    """Everyone tracked in one frame, in the tracker's fixed person order, in source-frame pixels."""

    keypoints: np.ndarray  # (N, 133, 3) x, y, score; score 0 where a point (or the person) is missing
    masks: np.ndarray  # (N, H, W) bool instance masks


class TrackedPeople(Protocol):
    """What the materials writer needs from multi-person tracking."""

    @property
    def frame_size(self) -> tuple[int, int]: ...  # (H, W) of the source frames

    @property
    def fps(self) -> float: ...

    @property
    def num_people(self) -> int: ...

    def frames(self) -> Iterator[PeopleFrame]: ...


def _frame(people: PeopleFrame, fit: Fit, size: tuple[int, int]) -> CharacterFrame:
    height, width = size
    keypoints = fit.apply_keypoints(people.keypoints)
    masks = np.stack(
        [
            cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
            for m in people.masks
        ]
    )
    return CharacterFrame(pose=draw_people(keypoints, height, width), masks=masks)


def write_multianimate_materials(
    output: str | Path,
    people: TrackedPeople,
    reference: np.ndarray,
    reference_keypoints: np.ndarray,
    *,
    area: tuple[int, int] = DEFAULT_AREA,
    audio: AudioSource | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> CharacterMaterials:
    """Write and validate an N-character materials folder at ``output``.

    ``reference`` is the (H, W, 3) uint8 reference frame and ``reference_keypoints`` its people,
    ``(N, 133, 3)`` in reference pixels and in the tracker's person order.
    """
    output = Path(output).absolute()
    count = people.num_people
    if count < 1:
        raise WanimateError("no tracked person to animate; MultiAnimate needs at least one character")
    reference_keypoints = np.asarray(reference_keypoints, np.float32).reshape(-1, 133, 3)
    if len(reference_keypoints) != count:
        raise WanimateError(
            f"the reference has {len(reference_keypoints)} people but {count} were tracked; the reference must "
            "show every character"
        )
    frame_h, frame_w = people.frame_size
    width, height = size_for_area(frame_w, frame_h, area)
    ref_fit = stretch(reference.shape[:2], (height, width))
    with staged_folder(output, overwrite, {}) as staging:
        fit = stretch((frame_h, frame_w), (height, width))
        write_character_folder(
            staging,
            reference=ref_fit.apply_image(reference),
            reference_pose=draw_people(ref_fit.apply_keypoints(reference_keypoints), height, width),
            frames=(_frame(frame, fit, (height, width)) for frame in people.frames()),
            characters=count,
            fps=people.fps,
            audio=audio,
            provenance={"tool": "wanimate preprocess --model multianimate", **(provenance or {})},
        )
        load_character_materials(staging)
    return load_character_materials(output)
