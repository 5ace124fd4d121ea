"""Model components: building (random, for tests and benchmarks) and loading (real weights).

The public names are resolved lazily so that importing a command module (``wanimate --help``) does not
pull in torch and diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wanimate.models.convert import convert_weights
    from wanimate.models.loading import LoadedModel, load_model
    from wanimate.models.lora import apply_relight_lora

__all__ = ["LoadedModel", "apply_relight_lora", "convert_weights", "load_model"]

_HOMES = {
    "LoadedModel": "wanimate.models.loading",
    "convert_weights": "wanimate.models.convert",
    "load_model": "wanimate.models.loading",
    "apply_relight_lora": "wanimate.models.lora",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'wanimate.models' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
