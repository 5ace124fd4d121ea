"""The model-free CPU preview: a rigged cut-out of the character follows the driving skeleton.

Attributes load lazily so that registering ``wanimate preview`` does not import OpenCV and SciPy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CharacterRenderer": "wanimate.preview.renderer",
    "PoseTrack": "wanimate.preview.renderer",
    "render_frames": "wanimate.preview.renderer",
    "render_preview": "wanimate.preview.renderer",
    "Rig": "wanimate.preview.rig",
    "build_rig": "wanimate.preview.rig",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
