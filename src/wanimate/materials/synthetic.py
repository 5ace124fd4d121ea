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
