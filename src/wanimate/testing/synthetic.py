"""Synthetic materials folders: smooth random content in the official layout.

Used by the test suite and by ``wanimate bench generate``, which need materials of
any size and length without running preprocessing on real footage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wanimate.materials import MaterialsMeta, write_meta
from wanimate.video import VideoWriter


def smooth_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Low-frequency colour noise: survives H.264 well and gives the VAE something to encode."""
    small = rng.integers(0, 256, (max(height // 8, 1), max(width // 8, 1), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def write_materials(
    root: Path,
    *,
    num_frames: int = 12,
    height: int = 32,
    width: int = 32,
    face_size: int = 16,
    mode: str = "animate",
    fps: float = 30.0,
    seed: int = 0,
    with_meta: bool = True,
) -> Path:
    """A materials folder of random but smooth content, in the official layout."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_noise(rng, height + 8, width - 4)).save(root / "src_ref.png")
    names = ["pose", "face"] + (["bg", "mask"] if mode == "replace" else [])
    for name in names:
        size = (face_size, face_size) if name == "face" else (height, width)
        with VideoWriter(root / f"src_{name}.mp4", fps, lossless=name == "mask") as writer:
            for t in range(num_frames):
                if name == "mask":
                    frame = np.zeros((*size, 3), np.uint8)
                    y0 = 4 + t % 4
                    frame[y0 : y0 + size[0] // 2, size[1] // 4 : 3 * size[1] // 4] = 255
                else:
                    frame = smooth_noise(rng, *size)
                writer.write(frame)
    if with_meta:
        write_meta(
            root,
            MaterialsMeta(mode=mode, fps=fps, width=width, height=height, num_frames=num_frames),
        )
    return root


# A standing figure in box coordinates (0..1): COCO-17 body points and the six foot points.
_FIGURE = np.array(
    [
        (0.50, 0.08), (0.46, 0.06), (0.54, 0.06), (0.42, 0.08), (0.58, 0.08),  # nose, eyes, ears
        (0.30, 0.22), (0.70, 0.22), (0.22, 0.40), (0.78, 0.40), (0.18, 0.56), (0.82, 0.56),  # arms
        (0.38, 0.55), (0.62, 0.55), (0.36, 0.75), (0.64, 0.75), (0.35, 0.94), (0.65, 0.94),  # legs
        (0.30, 0.99), (0.33, 0.99), (0.37, 0.97), (0.70, 0.99), (0.67, 0.99), (0.63, 0.97),  # feet
    ],
    np.float32,
)  # fmt: skip


def figure_keypoints(box: tuple[float, float, float, float]) -> np.ndarray:
    """(133, 3) whole-body keypoints of a standing figure filling ``box`` (x0, y0, x1, y1); no hands or face."""
    x0, y0, x1, y1 = box
    kp = np.zeros((133, 3), np.float32)
    kp[: len(_FIGURE), 0] = x0 + _FIGURE[:, 0] * (x1 - x0)
    kp[: len(_FIGURE), 1] = y0 + _FIGURE[:, 1] * (y1 - y0)
    kp[: len(_FIGURE), 2] = 1.0
    return kp


def character_boxes(characters: int, height: int, width: int, t: int) -> list[tuple[float, float, float, float]]:
    """Side-by-side boxes that sway left and right with ``t`` (frame 0: the reference's positions)."""
    slot = width / characters
    sway = slot * 0.1 * np.sin(t / 3.0)
    return [
        (i * slot + slot * 0.15 + sway, height * 0.1, (i + 1) * slot - slot * 0.15 + sway, height * 0.95)
        for i in range(characters)
    ]


def write_character_materials(
    root: Path,
    *,
    characters: int = 2,
    num_frames: int = 9,
    height: int = 32,
    width: int = 48,
    fps: float = 15.0,
    seed: int = 0,
) -> Path:
    """An N-character materials folder (format version 2): side-by-side figures swaying over smooth noise."""
    from wanimate.materials.characters_writer import CharacterFrame, write_character_folder
    from wanimate.preprocess.dwpose_skeleton import draw_people

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)

    def people(t: int) -> np.ndarray:
        return np.stack([figure_keypoints(box) for box in character_boxes(characters, height, width, t)])

    def masks(t: int) -> np.ndarray:
        out = np.zeros((characters, height, width), bool)
        for i, (x0, y0, x1, y1) in enumerate(character_boxes(characters, height, width, t)):
            out[i, int(y0) : int(np.ceil(y1)), max(int(x0), 0) : int(np.ceil(x1))] = True
        return out

    reference = smooth_noise(rng, height, width).copy()
    for mask, tint in zip(masks(0), rng.integers(0, 256, (characters, 3)), strict=True):
        reference[mask] = (reference[mask] // 2 + tint // 2).astype(np.uint8)
    write_character_folder(
        root,
        reference=reference,
        reference_pose=draw_people(people(0), height, width),
        frames=(CharacterFrame(draw_people(people(t), height, width), masks(t)) for t in range(num_frames)),
        characters=characters,
        fps=fps,
        provenance={"tool": "wanimate.testing.synthetic"},
    )
    return root
