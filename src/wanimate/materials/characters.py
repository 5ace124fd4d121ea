"""N-character materials for MultiAnimate: ours (format version 2) and MultiAnimate's own demo layout.

Ours keeps the single-character file names where they mean the same thing and adds one mask per
character (docs/materials.md, docs/multianimate.md)::

    src_ref.png          the reference frame holding every character, W×H
    src_ref_pose.png     the reference's skeletons, DWPose-style, W×H
    src_pose.mp4         every character's skeleton in each frame, W×H
    src_mask_1.mp4 ...   one mask per character, in order (label i = file i; later wins on overlap)
    meta.json            format_version 2, "model": "multianimate", "characters": N

The demo layout of ``hyc001/MultiAnimate`` is read as it is: ``source_frames/`` (the first image is
the reference), ``pose/`` (one skeleton image per frame, ``pose.jpg`` = the reference's),
``masks/<person>/`` (file names = pose frame names; people in sorted order). It is resized on read
to 832×480 (or ``size``) the way the reference does: bicubic for the reference, bilinear for poses
and masks.

Loading checks, before any model is loaded, what makes MultiAnimate silently wrong: frame counts
that disagree, a character whose frame-0 mask is empty (or entirely covered by later ones), and
frame-0 masks that do not lie over a character of the reference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.hashing import update_with_file
from wanimate.materials.folder import (
    DEMO_DIRS,
    MATERIAL_FILES,
    Materials,
    MaterialsMeta,
    Mode,
    read_meta,
)
from wanimate.video import iter_frames, probe_video

REF_POSE_FILE = "src_ref_pose.png"
DEMO_SIZE = (832, 480)  # (W, H): the reference's fixed size
DEMO_FPS = 15.0  # the reference saves its results at 15 fps
DEMO_REF_POSE = "pose.jpg"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SKELETON_LEVEL = 40  # a pose-image pixel brighter than this (any channel) is skeleton, not background
MIN_SKELETON_SHARE = 0.001  # of a character's frame-0 mask area that must be reference skeleton


def mask_file(index: int) -> str:
    """File of character ``index`` (from 1)."""
    return f"src_mask_{index}.mp4"


@dataclass(frozen=True)
class FrameSequence:
    """One material video or image sequence at the output size; ``open()`` starts it from frame 0."""

    label: str
    files: tuple[Path, ...]
    open: Callable[[], Iterator[np.ndarray]]

    def first(self) -> np.ndarray:
        frames = self.open()
        try:
            return next(frames)
        except StopIteration:
            raise WanimateError(f"{self.label} has no frames") from None
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()


@dataclass(frozen=True)
class CharacterMaterials:
    """A validated N-character materials folder."""

    root: Path
    meta: MaterialsMeta
    layout: str  # "wanimate" | "multianimate-demo"
    reference_file: Path
    reference_pose_file: Path
    pose: FrameSequence
    masks: tuple[FrameSequence, ...]
    reference: Callable[[], np.ndarray]  # (H, W, 3) uint8 at the output size
    reference_pose: Callable[[], np.ndarray]

    @property
    def characters(self) -> int:
        return len(self.masks)

    @property
    def mode(self) -> Mode:
        return self.meta.mode

    @property
    def num_frames(self) -> int:
        return self.meta.num_frames

    @property
    def height(self) -> int:
        return self.meta.height

    @property
    def width(self) -> int:
        return self.meta.width

    def fingerprint(self) -> str:
        """Content hash of every file generation reads (and the read size), for the resume key."""
        digest = hashlib.sha256(f"{self.layout}:{self.width}x{self.height}:{self.meta.fps}".encode())
        for path in (self.reference_file, self.reference_pose_file, *self.pose.files):
            update_with_file(digest, path)
        for mask in self.masks:
            digest.update(mask.label.encode())
            for path in mask.files:
                update_with_file(digest, path)
        return digest.hexdigest()


def load_character_materials(root: str | Path, size: tuple[int, int] | None = None) -> CharacterMaterials:
    """Validate an N-character folder (ours or the demo layout); ``size`` (W, H) applies to the demo layout."""
    root = Path(root)
    if not root.is_dir():
        raise WanimateError(f"materials folder not found: {root}")
    meta = read_meta(root)
    if meta is not None and meta.characters > 0:
        materials = _read_ours(root, meta)
    elif meta is None and all((root / d).is_dir() for d in DEMO_DIRS):
        materials = _read_demo(root, size or DEMO_SIZE)
    elif meta is not None:
        raise WanimateError(
            f"{root} holds single-character Wan2.2-Animate materials; use --model animate, or preprocess "
            "with --model multianimate"
        )
    else:
        raise WanimateError(
            f'{root} is not MultiAnimate materials: it needs meta.json with "characters" (wanimate preprocess '
            "--model multianimate) or MultiAnimate's demo layout source_frames/, pose/, masks/<person>/"
        )
    check_first_frame(materials)
    return materials


def load_any_materials(root: str | Path, mode: Mode | None = None) -> Materials | CharacterMaterials:
    """A single-character or an N-character folder, whichever ``root`` holds."""
    from wanimate.materials.folder import is_character_folder, load_materials

    root = Path(root)
    if root.is_dir() and is_character_folder(root, read_meta(root)):
        return load_character_materials(root)
    return load_materials(root, mode=mode)


# ------------------------------------------------------------------------------------------- ours


def _video(path: Path, label: str) -> FrameSequence:
    return FrameSequence(label, (path,), lambda: iter_frames(path))


def _read_ours(root: Path, meta: MaterialsMeta) -> CharacterMaterials:
    needed = [MATERIAL_FILES["ref"], REF_POSE_FILE, MATERIAL_FILES["pose"]] + [
        mask_file(i) for i in range(1, meta.characters + 1)
    ]
    missing = [name for name in needed if not (root / name).is_file()]
    if missing:
        raise WanimateError(f"{root} is missing {', '.join(missing)} (meta.json says {meta.characters} characters)")
    size = (meta.width, meta.height)
    for name in (MATERIAL_FILES["ref"], REF_POSE_FILE):
        with Image.open(root / name) as image:
            if image.size != size:
                raise WanimateError(
                    f"{name} is {image.size[0]}x{image.size[1]} but the materials are {size[0]}x{size[1]}"
                )
    pose_name = MATERIAL_FILES["pose"]
    pose_info = probe_video(root / pose_name)
    if (pose_info.width, pose_info.height, pose_info.num_frames) != (meta.width, meta.height, meta.num_frames):
        raise WanimateError(
            f"{pose_name} is {pose_info.width}x{pose_info.height}x{pose_info.num_frames} frames but meta.json says "
            f"{meta.width}x{meta.height}x{meta.num_frames}; re-run preprocessing"
        )
    if meta.width % 16 or meta.height % 16:
        raise WanimateError(f"the materials are {meta.width}x{meta.height}; both sides must be multiples of 16")
    masks = []
    for i in range(1, meta.characters + 1):
        info = probe_video(root / mask_file(i))
        if info.num_frames != pose_info.num_frames:
            raise WanimateError(
                f"{mask_file(i)} has {info.num_frames} frames but {pose_name} has {pose_info.num_frames}; "
                "every character's mask video must have one frame per pose frame"
            )
        if (info.width, info.height) != size:
            raise WanimateError(f"{mask_file(i)} is {info.width}x{info.height} but {pose_name} is {size[0]}x{size[1]}")
        masks.append(_video(root / mask_file(i), mask_file(i)))
    return CharacterMaterials(
        root=root,
        meta=meta,
        layout="wanimate",
        reference_file=root / MATERIAL_FILES["ref"],
        reference_pose_file=root / REF_POSE_FILE,
        pose=_video(root / pose_name, pose_name),
        masks=tuple(masks),
        reference=lambda: _rgb(root / MATERIAL_FILES["ref"], size, Image.BICUBIC),
        reference_pose=lambda: _rgb(root / REF_POSE_FILE, size, Image.BILINEAR),
    )


# -------------------------------------------------------------------------------------- demo layout


def _rgb(path: Path, size: tuple[int, int], resample: int) -> np.ndarray:
    """An image as (H, W, 3) uint8 at ``size`` (W, H); PIL resize (antialiased), as the reference's."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except OSError as exc:
        raise WanimateError(f"{path} is not a readable image ({exc})") from exc
    if rgb.size != size:
        rgb = rgb.resize(size, resample)
    return np.asarray(rgb)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _image_sequence(paths: list[Path], label: str, size: tuple[int, int]) -> FrameSequence:
    frozen = tuple(paths)
    return FrameSequence(label, frozen, lambda: (_rgb(p, size, Image.BILINEAR) for p in frozen))


def _read_demo(root: Path, size: tuple[int, int]) -> CharacterMaterials:
    width, height = size
    if width % 16 or height % 16:
        raise WanimateError(f"the demo layout is read at {width}x{height}; both sides must be multiples of 16")
    sources = _images(root / "source_frames")
    if not sources:
        raise WanimateError(f"{root / 'source_frames'} holds no image; its first image is the reference")
    ref_pose = root / "pose" / DEMO_REF_POSE
    if not ref_pose.is_file():
        raise WanimateError(f"{root / 'pose'} lacks {DEMO_REF_POSE}, the reference's skeleton image")
    poses = [p for p in _images(root / "pose") if p.name != DEMO_REF_POSE]
    if not poses:
        raise WanimateError(f"{root / 'pose'} holds no pose frames besides {DEMO_REF_POSE}")
    people = sorted(p for p in (root / "masks").iterdir() if p.is_dir())
    if not people:
        raise WanimateError(f"{root / 'masks'} holds no per-person folder; one folder of masks per character")
    masks = []
    for person in people:
        files = {p.name: p for p in _images(person)}
        label = f"masks/{person.name}"
        if len(files) != len(poses):
            raise WanimateError(
                f"{label} has {len(files)} masks but pose/ has {len(poses)} frames; each person needs one mask "
                "per pose frame, with the same file names"
            )
        absent = [p.name for p in poses if p.name not in files]
        if absent:
            raise WanimateError(f"{label} lacks {absent[0]} (mask file names must equal the pose frame names)")
        masks.append(_image_sequence([files[p.name] for p in poses], label, size))
    meta = MaterialsMeta(
        mode="animate",
        fps=DEMO_FPS,
        width=width,
        height=height,
        num_frames=len(poses),
        provenance={"tool": "MultiAnimate demo layout (source_frames/, pose/, masks/)"},
        characters=len(people),
    )
    return CharacterMaterials(
        root=root,
        meta=meta,
        layout="multianimate-demo",
        reference_file=sources[0],
        reference_pose_file=ref_pose,
        pose=_image_sequence(poses, "pose/", size),
        masks=tuple(masks),
        reference=lambda: _rgb(sources[0], size, Image.BICUBIC),
        reference_pose=lambda: _rgb(ref_pose, size, Image.BILINEAR),
    )


# ----------------------------------------------------------------------------------- frame 0 checks


def check_first_frame(materials: CharacterMaterials) -> None:
    """Every character has a frame-0 region of its own, and it lies over a skeleton of the reference."""
    from wanimate.multianimate.labels import binarize, label_indices

    first = [binarize(mask.first())[None] for mask in materials.masks]
    labels = label_indices(first)[0]
    skeleton = (materials.reference_pose() > SKELETON_LEVEL).any(axis=-1)
    if not skeleton.any():
        raise WanimateError(
            f"{materials.reference_pose_file.name} shows no skeleton; it must draw the reference's characters "
            "(DWPose style), as the masks' frame 0 is matched against it"
        )
    for i, mask in enumerate(materials.masks, start=1):
        if not first[i - 1].any():
            raise WanimateError(
                f"character {i}'s mask ({mask.label}) is empty at frame 0; frame-0 masks must show where each "
                "character stands in the reference"
            )
        own = labels == i
        if not own.any():
            raise WanimateError(
                f"character {i}'s frame-0 mask ({mask.label}) is entirely covered by later characters' masks "
                "(later masks win where they overlap)"
            )
        covered = int((skeleton & own).sum())
        if covered < max(3, MIN_SKELETON_SHARE * own.sum()):
            raise WanimateError(
                f"character {i}'s frame-0 mask ({mask.label}) does not match the reference: no skeleton of "
                f"{materials.reference_pose_file.name} lies inside it; frame-0 masks must cover the characters "
                "where they stand in the reference"
            )
