"""The cast folder: what a cast's preprocessing writes and its renderers read (docs/cast.md).

Both modes::

    cast.json                 the cast: mode, model, size, fps, frames, audio, and per character its
                              number, tracked id, image (with sha256) and first frame; the layer/pass order
    cast.npz                  ids (C,), reference (C, 133, 3), driving (C, T, 133, 3) in output pixels
                              (retargeted in animate mode), present (C, T), boxes (C, T, 4) output pixels

Animate mode (MultiAnimate) adds a complete N-character materials folder (format version 2:
``src_ref.png`` the composed reference, ``src_ref_pose.png``, ``src_pose.mp4``, ``src_mask_<i>.mp4``,
``meta.json``) and the layers the preview rigs: ``cast_layers/background.png`` and
``cast_layers/character_<id>.png`` (RGBA at the output size, where the reference placed them).

Replace mode (Wan2.2-Animate-14B, one pass per person) adds ``src_scene.mp4`` (the driving frames
at the output size), ``src_labels.mp4`` (everyone's instance masks, lossless, id + 1 per pixel),
``src_ref_<id>.png`` (each character letterboxed, as one-character replace mode writes it), its
RGBA cut-out ``cast_layers/character_<id>.png`` and ``src_face_<id>.mp4`` (each cast performer's face
crops).

``cast.json`` is written last: a folder without it is incomplete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wanimate.cast.spec import CastMember
from wanimate.errors import WanimateError
from wanimate.materials.folder import AudioSource

CAST_JSON = "cast.json"
CAST_ARRAYS = "cast.npz"
CAST_VERSION = 1
LAYERS = "cast_layers"
SCENE = "src_scene.mp4"
LABELS = "src_labels.mp4"


def ref_file(person: int) -> str:
    return f"src_ref_{person}.png"


def face_file(person: int) -> str:
    return f"src_face_{person}.mp4"


def layer_file(person: int) -> str:
    return f"{LAYERS}/character_{person}.png"


@dataclass(frozen=True)
class CastArrays:
    ids: np.ndarray  # (C,)
    reference: np.ndarray  # (C, 133, 3)
    driving: np.ndarray  # (C, T, 133, 3)
    present: np.ndarray  # (C, T) bool
    boxes: np.ndarray  # (C, T, 4)

    def index(self, person: int) -> int:
        return int(np.flatnonzero(self.ids == person)[0])


@dataclass(frozen=True)
class CastFolder:
    """A written cast folder."""

    root: Path
    mode: str
    model: str
    fps: float
    width: int
    height: int
    num_frames: int
    members: tuple[CastMember, ...]  # character order (character i = members[i - 1])
    order: tuple[int, ...]  # ids, back to front: the preview's default layering and replace mode's pass order
    order_rule: str
    audio: AudioSource | None

    def arrays(self) -> CastArrays:
        with np.load(self.root / CAST_ARRAYS) as data:
            return CastArrays(**{name: data[name] for name in ("ids", "reference", "driving", "present", "boxes")})

    def layer(self, person: int) -> tuple[np.ndarray, np.ndarray]:
        """A character's pixels (H, W, 3) and alpha (H, W) float32: placed (animate) or letterboxed (replace)."""
        with Image.open(self.root / layer_file(person)) as img:
            rgba = np.asarray(img.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255.0

    def plate(self) -> np.ndarray:
        with Image.open(self.root / LAYERS / "background.png") as img:
            return np.asarray(img.convert("RGB"))


def write_cast_json(root: Path, folder_facts: dict[str, Any]) -> None:
    partial = root / f".{CAST_JSON}.partial"
    partial.write_text(
        json.dumps({"format": "wanimate-cast", "version": CAST_VERSION, **folder_facts}, indent=2) + "\n"
    )
    os.replace(partial, root / CAST_JSON)


def is_cast_folder(root: str | Path) -> bool:
    return (Path(root) / CAST_JSON).is_file()


def load_cast(root: str | Path) -> CastFolder:
    """Read a cast folder's index; one line when it is not one (or is newer than this wanimate)."""
    root = Path(root)
    path = root / CAST_JSON
    if not path.is_file():
        raise WanimateError(f"{root} is not a cast folder (no {CAST_JSON}); write one with `wanimate run --cast`")
    try:
        data = json.loads(path.read_text())
        version = int(data["version"])
        if version > CAST_VERSION:
            raise WanimateError(f"{path} is cast version {version}; this wanimate reads up to {CAST_VERSION}")
        audio = data.get("audio")
        return CastFolder(
            root=root,
            mode=data["mode"],
            model=data["model"],
            fps=float(data["fps"]),
            width=int(data["width"]),
            height=int(data["height"]),
            num_frames=int(data["num_frames"]),
            members=tuple(CastMember(int(c["person"]), Path(c["image"])) for c in data["characters"]),
            order=tuple(int(i) for i in data["order"]),
            order_rule=data["order_rule"],
            audio=AudioSource(**audio) if audio else None,
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise WanimateError(f"{path} is not a valid cast index ({exc}); re-run the cast's preprocessing") from exc
