"""The materials folder: the documented hand-off between preprocessing and generation.

Attributes load lazily, so that settings can name the modes without importing PIL and PyAV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FORMAT_VERSION": "wanimate.materials.layout",
    "MATERIAL_FILES": "wanimate.materials.layout",
    "MODES": "wanimate.materials.layout",
    "Materials": "wanimate.materials.folder",
    "MaterialsMeta": "wanimate.materials.folder",
    "load_materials": "wanimate.materials.folder",
    "write_meta": "wanimate.materials.folder",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
