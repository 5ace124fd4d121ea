"""The LoRA adapters on one pipeline: which files are loaded, which are active, at what strength.

PEFT keeps adapters by name on the transformer; what it does not keep is which *file* an adapter
came from. :class:`Adapters` records that itself (a model session owns one), so asking for the
same file again only changes its strength, a different file replaces the adapter, and an adapter
that is no longer wanted is switched off, exactly, not left active. Loaded adapters stay loaded
while inactive, so alternating replace-mode (relighting) and animate-mode jobs does not reload
the 1.4 GB relighting LoRA each time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wanimate.models import distill, lora

RELIGHT = lora.ADAPTER_NAME
DISTILL = distill.ADAPTER_NAME
_ORDER = (RELIGHT, DISTILL)  # a fixed order: the same adapters are always summed in the same order


def source_key(source: str | Path | dict | None) -> Any:
    """What identifies an adapter's source: the resolved file with its size and mtime, or the dict itself."""
    if source is None:
        return None
    if isinstance(source, dict):
        return ("dict", id(source))
    path = Path(source).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), stat.st_size, stat.st_mtime_ns)


class Adapters:
    """The record of the adapters this process put on ``pipe.transformer``."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.sources: dict[str, Any] = {}
        self.scales: dict[str, float] = {}

    def set_relight(self, path: Path | None, scale: float) -> None:
        """The relighting LoRA from ``path`` at ``scale``; ``None`` or 0 switches it off."""
        if path is not None and scale:
            self._load(RELIGHT, path, lambda: lora.load_relight_lora(self.pipe.transformer, path))
        self.scales[RELIGHT] = scale if path is not None else 0.0
        self._activate()

    def set_distill(self, source: str | Path | dict | None, scale: float) -> None:
        """A step-distill LoRA (file or state dict) at ``scale``; ``None`` or 0 switches it off."""
        if source is not None and scale:
            self._load(DISTILL, source, lambda: distill.load_distill_lora(self.pipe, source))
        self.scales[DISTILL] = scale if source is not None else 0.0
        self._activate()

    def active(self) -> dict[str, float]:
        """Adapter name -> strength for the adapters that change the output now."""
        return {name: self.scales[name] for name in _ORDER if self.scales.get(name) and name in self.sources}

    def _load(self, name: str, source: Any, loader: Any) -> None:
        key = source_key(source)
        if self.sources.get(name) == key:
            return
        self.sources.pop(name, None)
        loader()
        self.sources[name] = key

    def _activate(self) -> None:
        if not self.sources:
            return
        transformer = self.pipe.transformer
        active = self.active()
        if not active:
            transformer.disable_lora()
            return
        transformer.enable_lora()
        transformer.set_adapters(list(active), weights=list(active.values()))
