"""MultiAnimate (arXiv 2602.21581): several characters in one scene, on Wan2.1-I2V-14B (docs/multianimate.md).

Names resolve lazily so that reading settings or materials does not import torch and diffusers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MultiAnimateAdapters": "wanimate.multianimate.adapters",
    "MultiAnimateModel": "wanimate.multianimate.loading",
    "MultiAnimateSettings": "wanimate.multianimate.settings",
    "load_multianimate": "wanimate.multianimate.loading",
    "RELEASES": "wanimate.multianimate.checkpoint",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
