"""Read, validate and describe a materials folder.

A materials folder is what preprocessing writes and generation reads. It keeps the
official Wan2.2 file names so the official ``generate.py`` can read ours and we can
read theirs; ``meta.json`` is our addition (see docs/materials.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from wanimate.errors import WanimateError
from wanimate.hashing import update_with_file
from wanimate.materials.layout import (
    CHARACTERS_FORMAT_VERSION,
    FORMAT_VERSION,
    MATERIAL_FILES,
    META_NAME,
    MODES,
    OFFICIAL_FPS,
    READABLE_VERSION,
    Mode,
)
from wanimate.video import AudioSource, probe_video


@dataclass
class MaterialsMeta:
    mode: Mode
    fps: float
    width: int
    height: int
    num_frames: int
    audio: AudioSource | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    characters: int = 0  # 0: a single-character Wan2.2-Animate folder; N >= 1: MultiAnimate's N characters

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.characters:
            data.update(format_version=max(self.format_version, CHARACTERS_FORMAT_VERSION), model="multianimate")
        else:
            data.pop("characters")
        return {"format": "wanimate-materials", **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MaterialsMeta:
        version = data.get("format_version")
        if version is None or version > READABLE_VERSION:
            raise WanimateError(
                f"meta.json format version {version} is not supported (this wanimate reads up to "
                f"{READABLE_VERSION}); upgrade wanimate or re-run preprocessing"
            )
        audio = data.get("audio")
        return cls(
            mode=data["mode"],
            fps=float(data["fps"]),
            width=int(data["width"]),
            height=int(data["height"]),
            num_frames=int(data["num_frames"]),
            audio=AudioSource(**audio) if audio else None,
            provenance=dict(data.get("provenance", {})),
            format_version=int(version),
            characters=int(data.get("characters", 0)),
        )


def write_meta(root: str | Path, meta: MaterialsMeta) -> Path:
    """Write meta.json atomically; it is written last, so its presence marks a complete folder."""
    path = Path(root) / META_NAME
    tmp = path.with_name(f".{META_NAME}.partial")
    tmp.write_text(json.dumps(meta.to_json(), indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Materials:
    """A validated materials folder: paths plus the facts generation needs."""

    root: Path
    meta: MaterialsMeta

    def path(self, name: str) -> Path:
        return self.root / MATERIAL_FILES[name]

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

    def video_names(self) -> list[str]:
        return ["pose", "face", "bg", "mask"] if self.mode == "replace" else ["pose", "face"]

    def fingerprint(self) -> str:
        """Content hash of the files generation reads, so changed materials invalidate saved segments."""
        digest = hashlib.sha256(f"{self.mode}:{self.meta.fps}".encode())
        for name in ["ref", *self.video_names()]:
            update_with_file(digest, self.path(name))
        return digest.hexdigest()


def read_meta(root: Path) -> MaterialsMeta | None:
    """The folder's meta.json, or ``None`` when it has none (an official folder); a broken one is an error."""
    meta_path = root / META_NAME
    if not meta_path.is_file():
        return None
    try:
        return MaterialsMeta.from_json(json.loads(meta_path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise WanimateError(f"{meta_path} is not valid materials metadata ({exc}); re-run preprocessing") from exc


# MultiAnimate's own demo layout (read as it is by wanimate.materials.characters).
DEMO_DIRS = ("source_frames", "pose", "masks")


def is_character_folder(root: Path, meta: MaterialsMeta | None) -> bool:
    """Whether ``root`` holds N-character MultiAnimate materials (ours, version 2, or its demo layout)."""
    if meta is not None:
        return meta.characters > 0
    return all((root / name).is_dir() for name in DEMO_DIRS)


def load_materials(root: str | Path, mode: Mode | None = None) -> Materials:
    """Validate a materials folder (ours or the official preprocessing's) and describe it.

    This is where a folder's mode is decided, once: ``mode`` when given (an override, e.g.
    ``generate --mode``), else ``meta.json``'s, else ``replace`` when the background and mask
    videos are present. Everything downstream reads ``Materials.mode``. Every check raises
    :class:`WanimateError` naming the file and what to fix, so a bad folder fails before any model
    is loaded.
    """
    root = Path(root)
    if not root.is_dir():
        raise WanimateError(f"materials folder not found: {root}")
    stored = read_meta(root)
    if is_character_folder(root, stored):
        raise WanimateError(
            f"{root} holds MultiAnimate materials (several characters); generate them with --model multianimate"
        )
    has_replace_files = all((root / MATERIAL_FILES[n]).is_file() for n in ("bg", "mask"))
    resolved_mode: Mode = mode or (stored.mode if stored else ("replace" if has_replace_files else "animate"))
    if resolved_mode not in MODES:
        raise WanimateError(f"--mode must be animate or replace, not {resolved_mode!r}")

    needed = ["ref", "pose", "face"] + (["bg", "mask"] if resolved_mode == "replace" else [])
    missing = [MATERIAL_FILES[n] for n in needed if not (root / MATERIAL_FILES[n]).is_file()]
    if missing:
        hint = " (replace mode needs src_bg.mp4 and src_mask.mp4: preprocess with --mode replace)"
        raise WanimateError(f"{root} is missing {', '.join(missing)}" + (hint if resolved_mode == "replace" else ""))
    try:
        with Image.open(root / MATERIAL_FILES["ref"]) as ref:
            ref.verify()
    except Exception as exc:
        raise WanimateError(f"{root / MATERIAL_FILES['ref']} is not a readable image ({exc})") from exc

    infos = {n: probe_video(root / MATERIAL_FILES[n]) for n in needed if n != "ref"}
    pose = infos["pose"]
    if pose.num_frames == 0:
        raise WanimateError(f"{root / MATERIAL_FILES['pose']} has zero frames")
    if pose.height % 16 or pose.width % 16:
        raise WanimateError(
            f"{MATERIAL_FILES['pose']} is {pose.width}x{pose.height}; width and height must be multiples of 16 "
            "(re-run preprocessing with an --area whose sides are multiples of 16)"
        )
    for name, info in infos.items():
        if info.num_frames != pose.num_frames:
            raise WanimateError(
                f"{MATERIAL_FILES[name]} has {info.num_frames} frames but {MATERIAL_FILES['pose']} has "
                f"{pose.num_frames}; all material videos must have the same frame count"
            )
        if name in ("bg", "mask") and (info.width, info.height) != (pose.width, pose.height):
            raise WanimateError(
                f"{MATERIAL_FILES[name]} is {info.width}x{info.height} but {MATERIAL_FILES['pose']} is "
                f"{pose.width}x{pose.height}; they must match"
            )
    if stored is not None:
        meta = stored
        meta.mode = resolved_mode
        if (meta.width, meta.height, meta.num_frames) != (pose.width, pose.height, pose.num_frames):
            raise WanimateError(
                f"meta.json says {meta.width}x{meta.height}x{meta.num_frames} frames but {MATERIAL_FILES['pose']} "
                f"is {pose.width}x{pose.height}x{pose.num_frames}; re-run preprocessing"
            )
    else:
        meta = MaterialsMeta(
            mode=resolved_mode,
            fps=OFFICIAL_FPS,
            width=pose.width,
            height=pose.height,
            num_frames=pose.num_frames,
            provenance={"tool": "official preprocess_data.py (no meta.json)"},
        )
    return Materials(root=root, meta=meta)
