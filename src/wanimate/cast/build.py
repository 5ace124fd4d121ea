"""Write a cast folder from tracked people and the cast's character images (layout: wanimate.cast.folder).

One streamed pass over the id-labelled masks (and, in replace mode, the driving frames) writes every
video; nothing holds the clip. The folder is built in a hidden sibling and renamed into place, so a
failure (an id never visible, a character missing from the first frame) leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from wanimate.cast.characters import CastCharacter
from wanimate.cast.compose import Layer, background_plate, compose_reference, place, render_layer
from wanimate.cast.folder import (
    CAST_ARRAYS,
    LABELS,
    LAYERS,
    SCENE,
    CastFolder,
    face_file,
    layer_file,
    load_cast,
    ref_file,
    write_cast_json,
)
from wanimate.cast.people import PeopleRecord, TrackedPerson, first_frame, overall_depth, person_by_id
from wanimate.cast.settings import ORDERS
from wanimate.cast.spec import CAST_MODEL, CastMember, check_visible
from wanimate.errors import WanimateError
from wanimate.hashing import file_sha256
from wanimate.materials.characters_writer import CharacterFrame, write_character_folder
from wanimate.materials.layout import FACE_SIZE, MATERIAL_PRESET
from wanimate.preprocess.dwpose_skeleton import draw_people
from wanimate.preprocess.sizing import Fit, letterbox, size_for_area, stretch
from wanimate.video import AudioSource


@dataclass(frozen=True)
class CastInputs:
    """Everything a cast folder is made from."""

    mode: str
    members: list[CastMember]
    characters: list[CastCharacter]  # one per member, same order
    people: PeopleRecord
    video: Path
    fps: float | None = None  # the rate the people were tracked at (None: the video's)
    area: tuple[int, int] = (1280, 720)
    background: str | Path = "image"
    order: str = "depth"
    retarget: bool = True
    audio: AudioSource | None = None


def pass_order(members: list[CastMember], people: PeopleRecord, rule: str) -> list[int]:
    """Ids back to front: by the depth cue (median box bottom, far first), or by id."""
    if rule not in ORDERS:
        raise WanimateError(f"--cast-order must be depth or id, not {rule!r}")
    tracked = person_by_id(people)
    if rule == "id":
        return [m.person for m in members]
    return [m.person for m in sorted(members, key=lambda m: (overall_depth(tracked[m.person]), m.person))]


def _driving(person: TrackedPerson, fit: Fit, reference: np.ndarray | None, sizes: tuple) -> np.ndarray:
    """The performer's keypoints in output pixels: retargeted onto ``reference`` when given."""
    source = np.array(person.keypoints, np.float32, copy=True)
    source[~person.present, :, 2] = 0.0
    if reference is None:
        return fit.apply_keypoints(source)
    from wanimate.preprocess.retarget import retarget

    src_size, out_size = sizes
    return np.asarray(
        retarget(reference, source, ref_size=out_size, drive_size=src_size, out_size=out_size), np.float32
    )


def write_cast(output: str | Path, inputs: CastInputs, *, overwrite: bool = False) -> CastFolder:
    """Write the cast folder at ``output`` and return it (staged in a hidden sibling, published whole)."""
    from wanimate.preprocess.staging import staged_folder
    from wanimate.workdir import CAST_LAYOUT

    output = Path(output).absolute()
    people, mode = inputs.people, inputs.mode
    tracked = person_by_id(people)
    src_w, src_h = people.source_size
    width, height = size_for_area(src_w, src_h, inputs.area)
    fit = stretch((src_h, src_w), (height, width))
    if mode == "animate":
        for member in inputs.members:
            start = first_frame(tracked[member.person])
            if start != 0:
                raise WanimateError(
                    f"cast id {member.person} is not in the first frame of {inputs.video.name} (first seen at frame "
                    f"{start}); in animate mode every character starts in the reference frame, so cast people "
                    "present from frame 0"
                )
    sources = {"driving video": inputs.video, **{f"cast image {m.person}": Path(m.image) for m in inputs.members}}
    with staged_folder(output, overwrite, sources, CAST_LAYOUT) as staging:
        _write(staging, inputs, fit, (height, width))
    return load_cast(output)


def _write(staging: Path, inputs: CastInputs, fit: Fit, size: tuple[int, int]) -> None:
    people, mode, members = inputs.people, inputs.mode, inputs.members
    tracked = person_by_id(people)
    height, width = size
    src_size = (people.source_size[1], people.source_size[0])
    persons = [tracked[m.person] for m in members]
    if mode == "animate":
        layers = [
            render_layer(char, place(char, fit.apply_keypoints(p.keypoints[0]), fit.apply_boxes(p.boxes[0])), size)
            for char, p in zip(inputs.characters, persons, strict=True)
        ]
        references = np.stack([layer.keypoints for layer in layers])
    else:
        layers = []
        fits = [letterbox(char.pixels.shape[:2], size) for char in inputs.characters]
        references = np.stack([f.apply_keypoints(c.keypoints) for f, c in zip(fits, inputs.characters, strict=True)])
        (staging / LAYERS).mkdir()
        for member, char, f in zip(members, inputs.characters, fits, strict=True):
            rgb = f.apply_image(char.pixels)
            Image.fromarray(rgb).save(staging / ref_file(member.person))
            _save_layer(staging, member.person, rgb, f.apply_image(char.alpha))
    driving = np.stack(
        [
            _driving(p, fit, ref if mode == "animate" and inputs.retarget else None, (src_size, size))
            for p, ref in zip(persons, references, strict=True)
        ]
    )
    order = pass_order(members, people, inputs.order)
    np.savez(
        staging / CAST_ARRAYS,
        ids=np.array([m.person for m in members], np.int32),
        reference=references.astype(np.float32),
        driving=driving.astype(np.float32),
        present=np.stack([p.present for p in persons]).astype(bool),
        boxes=np.stack([fit.apply_boxes(np.asarray(p.boxes, np.float32)) for p in persons]).astype(np.float32),
    )
    labels = _labels(people, fit, size)
    if mode == "animate":
        seen = _write_animate(staging, inputs, layers, driving, labels)
    else:
        seen = _write_replace(staging, inputs, fit, labels)
    if mode == "replace":
        check_visible(members, seen, inputs.video)
    write_cast_json(
        staging,
        {
            "mode": mode,
            "model": CAST_MODEL[mode],
            "fps": float(people.fps),
            "width": width,
            "height": height,
            "num_frames": int(people.num_frames),
            "source_size": list(people.source_size),
            "video": {"path": str(inputs.video), "sha256": file_sha256(inputs.video)},
            "audio": vars(inputs.audio) if inputs.audio else None,
            "background": str(inputs.background) if mode == "animate" else None,
            "retarget": bool(inputs.retarget and mode == "animate"),
            "order_rule": inputs.order,
            "order": order,
            "characters": [
                {
                    "character": i + 1,
                    "person": m.person,
                    "image": str(Path(m.image).absolute()),
                    "sha256": file_sha256(Path(m.image)),
                    "first_frame": first_frame(tracked[m.person]),
                }
                for i, m in enumerate(members)
            ],
        },
    )


def _save_layer(staging: Path, person: int, rgb: np.ndarray, alpha: np.ndarray) -> None:
    alpha8 = np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, alpha8])).save(staging / layer_file(person))


def _labels(people: PeopleRecord, fit: Fit, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The id-labelled masks at the output size (nearest neighbour: labels are not blended)."""
    height, width = size
    for labels in people.iter_masks():
        yield cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)


def _write_animate(
    staging: Path, inputs: CastInputs, layers: list[Layer], driving: np.ndarray, labels: Iterator[np.ndarray]
) -> dict[int, int]:
    height, width = layers[0].alpha.shape
    tracked = person_by_id(inputs.people)
    ids = [m.person for m in inputs.members]
    plate = background_plate(inputs.background, inputs.characters[0], (height, width))
    depths = [float(tracked[i].boxes[0, 3]) for i in ids]
    reference = compose_reference(plate, layers, depths)
    (staging / LAYERS).mkdir()
    Image.fromarray(plate).save(staging / LAYERS / "background.png")
    for person, layer in zip(ids, layers, strict=True):
        _save_layer(staging, person, layer.rgb, layer.alpha)
    seen = dict.fromkeys(ids, 0)

    def frames() -> Iterator[CharacterFrame]:
        for t, label in enumerate(labels):
            masks = np.stack([label == person + 1 for person in ids])
            for person, mask in zip(ids, masks, strict=True):
                seen[person] += int(mask.sum())
            yield CharacterFrame(pose=draw_people(driving[:, t], height, width), masks=masks)

    write_character_folder(
        staging,
        reference=reference,
        reference_pose=draw_people(np.stack([layer.keypoints for layer in layers]), height, width),
        frames=frames(),
        characters=len(ids),
        fps=inputs.people.fps,
        audio=inputs.audio,
        provenance={"tool": "wanimate cast", "cast": [{"character": i + 1, "person": p} for i, p in enumerate(ids)]},
    )
    from wanimate.materials.characters import load_character_materials

    load_character_materials(staging)
    return seen


def _write_replace(staging: Path, inputs: CastInputs, fit: Fit, labels: Iterator[np.ndarray]) -> dict[int, int]:
    from wanimate.preprocess.face_crop import crop_face
    from wanimate.preprocess.sizing import MAX_SIDE
    from wanimate.video import VideoWriter, iter_frames

    tracked = person_by_id(inputs.people)
    ids = [m.person for m in inputs.members]
    seen = dict.fromkeys(ids, 0)
    fps = inputs.people.fps
    count = 0
    with ExitStack() as stack:
        scene = stack.enter_context(VideoWriter(staging / SCENE, fps, preset=MATERIAL_PRESET))
        label_video = stack.enter_context(VideoWriter(staging / LABELS, fps, lossless=True))
        faces = {p: stack.enter_context(VideoWriter(staging / face_file(p), fps, preset=MATERIAL_PRESET)) for p in ids}
        frames = iter_frames(inputs.video, fps=inputs.fps, max_side=MAX_SIDE)
        for t, (frame, label) in enumerate(zip(frames, labels, strict=False)):
            if (frame.shape[1], frame.shape[0]) != tuple(inputs.people.source_size):
                raise WanimateError(
                    f"{inputs.video.name} decodes at {frame.shape[1]}x{frame.shape[0]} but its people were tracked at "
                    f"{inputs.people.source_size[0]}x{inputs.people.source_size[1]}; track it again"
                )
            scene.write(fit.apply_image(frame))
            label_video.write(cv2.cvtColor(label, cv2.COLOR_GRAY2RGB))
            for person in ids:
                seen[person] += int((label == person + 1).sum())
                faces[person].write(crop_face(frame, tracked[person].face_boxes[t], size=FACE_SIZE))
            count += 1
    if count != inputs.people.num_frames:
        raise WanimateError(
            f"{inputs.video.name} gave {count} frames but its people record has {inputs.people.num_frames}; "
            "track it again with the same --fps"
        )
    return seen
