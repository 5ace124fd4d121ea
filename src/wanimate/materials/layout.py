"""The materials folder's names and constants, in one light module (no PIL, no PyAV).

Preprocessing writes these files, generation and the preview renderer read them, and the settings
offer the modes; docs/materials.md describes the folder.
"""

from __future__ import annotations

from typing import Literal, get_args

from wanimate.errors import WanimateError

FORMAT_VERSION = 1  # what single-character (Wan2.2-Animate) folders are written as
CHARACTERS_FORMAT_VERSION = 2  # version 2 adds the N-character layout of MultiAnimate (docs/multianimate.md)
READABLE_VERSION = CHARACTERS_FORMAT_VERSION
META_NAME = "meta.json"
MATERIAL_FILES = {
    "ref": "src_ref.png",
    "pose": "src_pose.mp4",
    "face": "src_face.mp4",
    "bg": "src_bg.mp4",
    "mask": "src_mask.mp4",
}
KEYPOINTS_NAME = "keypoints.npz"  # ours: the keypoints behind src_pose.mp4 (the preview renderer reads them)
STRIP_NAME = "strip.mp4"  # ours, with --strip: every material side by side
OFFICIAL_FPS = 30.0  # the official preprocessing always writes 30 fps
FACE_SIZE = 512
# x264 preset of the lossy material videos (skeleton, face, background, strip; the cast's too). They
# are intermediates read once by generation: "ultrafast" costs 45-85% of the CPU of "superfast" and
# 25-60% of "veryfast" a 720p frame at the same crf 17, within 2 dB of their PSNR (40-53 dB) and
# with files 1.4-3.5x as large (docs/benchmarks.md, issue #11).
MATERIAL_PRESET = "ultrafast"
# Masks may come from lossy mp4s (the official writer): readers threshold them back to 0/255 here.
MASK_THRESHOLD = 128

Mode = Literal["animate", "replace"]
MODES: tuple[str, ...] = get_args(Mode)


def check_mode(mode: str) -> None:
    """``--mode`` is one of ``MODES``: one clear line if not."""
    if mode not in MODES:
        raise WanimateError(f"--mode must be {' or '.join(MODES)}, not {mode!r}")
