"""Read, validate and describe a materials folder.

A materials folder is what preprocessing writes and generation reads. It keeps the
official Wan2.2 file names so the official ``generate.py`` can read ours and we can
read theirs; ``meta.json`` is our addition (see docs/materials.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wanimate.errors import WanimateError
from wanimate.hashing import update_with_file
from wanimate.image import open_image
from wanimate.materials.layout import (
    CHARACTERS_FORMAT_VERSION,
    FORMAT_VERSION,
    MATERIAL_FILES,
    META_NAME,
    OFFICIAL_FPS,
    READABLE_VERSION,
    Mode,
    check_mode,
)
from wanimate.paths import input_file, input_folder, temp_sibling
from wanimate.video import AudioSource, fps_fraction, probe_video


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
    def from_json(cls, data: Any) -> MaterialsMeta:
        """Validate a parsed meta.json whole (shape, types, ranges, fields) and build the metadata.

        Everything generation will rely on is checked here, before any model loads, so a hand-edited
        or damaged file fails at once with the field it got wrong.
        """
        if not isinstance(data, dict):
            raise ValueError(f"it holds a JSON {_json_kind(data)}, not an object")
        version = data.get("format_version")
        if version is None:
            raise ValueError("it has no format_version")
        if not _is_int(version) or version > READABLE_VERSION or version < 1:
            raise WanimateError(
                f"meta.json format version {version!r} is not supported (this wanimate reads up to "
                f"{READABLE_VERSION}); upgrade wanimate or re-run preprocessing"
            )
        unknown = sorted(set(data) - _META_FIELDS - _CHARACTERS_FIELDS)
        if unknown:
            raise WanimateError(
                f"meta.json has fields this wanimate does not know ({', '.join(unknown)}): it was written by a "
                "newer wanimate; upgrade wanimate or re-run preprocessing"
            )
        if data.get("format", "wanimate-materials") != "wanimate-materials":
            raise ValueError(f"format is {data['format']!r}, not 'wanimate-materials'")
        missing = [name for name in ("mode", "fps", "width", "height", "num_frames") if name not in data]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        if data["mode"] not in ("animate", "replace"):
            raise ValueError(f"mode is {data['mode']!r}, not 'animate' or 'replace'")
        fps = _number(data, "fps")
        if not 0 < fps <= MAX_FPS:
            raise ValueError(f"fps is {fps}; it must be above 0 and at most {MAX_FPS:g}")
        fps_fraction(fps)  # a rate too small to write (it rounds to 0) fails here, not after generation
        sizes = {name: _positive_int(data, name) for name in ("width", "height", "num_frames")}
        provenance = data.get("provenance", {})
        if not isinstance(provenance, dict):
            raise ValueError(f"provenance is a JSON {_json_kind(provenance)}, not an object")
        return cls(
            mode=data["mode"],
            fps=fps,
            audio=_audio(data.get("audio")),
            provenance=provenance,
            format_version=version,
            characters=_characters(data, version),
            **sizes,
        )


MAX_FPS = 1000.0
_META_FIELDS = {"format", "format_version", "mode", "fps", "width", "height", "num_frames", "audio", "provenance"}
_CHARACTERS_FIELDS = {"characters", "model"}  # version 2: MultiAnimate's N-character folders
_AUDIO_FIELDS = {"path", "start", "duration"}


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(data: dict[str, Any], name: str) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} is {value!r}, not a finite number")
    return float(value)


def _positive_int(data: dict[str, Any], name: str) -> int:
    value = data[name]
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} is {value!r}, not a whole number of at least 1")
    return int(value)


def _characters(data: dict[str, Any], version: int) -> int:
    """0 for a single-character folder; N >= 1 for MultiAnimate's (version 2, ``"model": "multianimate"``)."""
    if "characters" not in data and "model" not in data:
        return 0
    if version < CHARACTERS_FORMAT_VERSION:
        raise ValueError(f"characters and model belong to format version {CHARACTERS_FORMAT_VERSION}, not {version}")
    if data.get("model", "multianimate") != "multianimate":
        raise ValueError(f"model is {data['model']!r}, not 'multianimate'")
    return _positive_int(data, "characters")


def _audio(value: Any) -> AudioSource | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"audio is a JSON {_json_kind(value)}, not an object or null")
    unknown = sorted(set(value) - _AUDIO_FIELDS)
    if unknown:
        raise WanimateError(
            f"meta.json's audio has fields this wanimate does not know ({', '.join(unknown)}): it was written by "
            "a newer wanimate; upgrade wanimate or re-run preprocessing"
        )
    if not isinstance(value.get("path"), str) or not value["path"]:
        raise ValueError("audio.path must be a file path (a non-empty string)")
    start = _number(value, "start") if "start" in value else 0.0
    duration = _number(value, "duration") if value.get("duration") is not None else None
    if start < 0 or (duration is not None and duration <= 0):
        raise ValueError(f"audio.start must be at least 0 and audio.duration above 0, not {start} and {duration}")
    return AudioSource(path=value["path"], start=start, duration=duration)


def write_meta(root: str | Path, meta: MaterialsMeta) -> Path:
    """Write meta.json atomically; it is written last, so its presence marks a complete folder."""
    path = Path(root) / META_NAME
    tmp = temp_sibling(path)
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
    if not os.path.lexists(meta_path):
        return None
    try:
        return MaterialsMeta.from_json(json.loads(meta_path.read_text()))
    except (OSError, KeyError, TypeError, ValueError) as exc:
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
    root = input_folder(
        root,
        "materials folder",
        file_hint="give the folder `wanimate preprocess` wrote (for an image and a video, use `wanimate run`)",
    )
    stored = read_meta(root)
    if is_character_folder(root, stored):
        raise WanimateError(
            f"{root} holds MultiAnimate materials (several characters); generate them with --model multianimate"
        )
    has_replace_files = all((root / MATERIAL_FILES[n]).is_file() for n in ("bg", "mask"))
    resolved_mode: Mode = mode or (stored.mode if stored else ("replace" if has_replace_files else "animate"))
    check_mode(resolved_mode)

    needed = ["ref", "pose", "face"] + (["bg", "mask"] if resolved_mode == "replace" else [])
    for name in needed:  # present but not a readable file (a folder, a loop, a broken link): say which
        if os.path.lexists(root / MATERIAL_FILES[name]):
            input_file(root / MATERIAL_FILES[name], "material")
    missing = [MATERIAL_FILES[n] for n in needed if not (root / MATERIAL_FILES[n]).is_file()]
    if missing:
        hint = " (replace mode needs src_bg.mp4 and src_mask.mp4: preprocess with --mode replace)"
        raise WanimateError(f"{root} is missing {', '.join(missing)}" + (hint if resolved_mode == "replace" else ""))
    open_image(root / MATERIAL_FILES["ref"], "the reference image")  # decodes it: a damaged PNG fails here

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
