"""Parallel generation: one video on N ranks (Ulysses sequence parallel, CFG parallel, optional FSDP).

``layout`` sizes the split (no torch), ``plans`` holds one context-parallel plan per
transformer class, ``face`` and ``shard`` make Wan-Animate's per-frame face attention
exact on a sequence shard, ``setup`` applies it all to a loaded transformer,
``engine`` wraps a model's segment part for one rank of the shared segment loop
(inputs broadcast, CFG halves split, rank 0 decodes), ``run`` launches it
(``torchrun`` or ``--gpus N``; Wan2.2-Animate or MultiAnimate). See docs/scale.md.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Layout": "wanimate.parallel.layout",
    "ParallelSettings": "wanimate.parallel.layout",
    "choose_layout": "wanimate.parallel.layout",
    "RankJob": "wanimate.parallel.run",
    "run_generation": "wanimate.parallel.run",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
