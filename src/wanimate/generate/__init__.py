"""Generation: a materials folder becomes a video, segment by segment, with Wan2.2-Animate or MultiAnimate.

Attributes load lazily so that the CLI can read settings without importing torch and diffusers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GenerateSettings": "wanimate.generate.settings",
    "ProgressEvent": "wanimate.generate.engine",
    "SegmentGenerator": "wanimate.generate.engine",
    "generate": "wanimate.generate.pipeline",
    "plan_segments": "wanimate.generate.segments",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
