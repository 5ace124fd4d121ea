"""How N ranks split one generation: CFG groups × Ulysses sequence shards.

Pure arithmetic, no torch: the CLI checks a request (and says which rank counts would
work) before any process starts.

With guidance above 1 and an even rank count, CFG parallel puts the conditional pass
on one half of the ranks and the unconditional pass on the other; each half then
splits the token sequence with Ulysses. Ulysses shards the sequence across ranks for
everything but attention, where an all-to-all turns sequence shards into head
shards: that needs the head count and the token count to divide by the Ulysses
degree. When they do not, diffusers' "Ulysses anything" mode pads the heads and
splits the sequence unevenly; it is exact too, only less efficient, and the choice
is reported with the degrees that would divide evenly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wanimate.errors import WanimateError

CfgParallel = Literal["auto", "on", "off"]
CFG_PARALLEL_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class ParallelSettings:
    """What the user asks for: ``gpus`` ranks, CFG parallel (``auto``: when it applies), FSDP weight sharding."""

    gpus: int = 1
    cfg_parallel: CfgParallel = "auto"
    fsdp: bool = False

    def validate(self) -> None:
        if self.gpus < 1:
            raise WanimateError(f"--gpus must be at least 1, not {self.gpus}")
        if self.cfg_parallel not in CFG_PARALLEL_MODES:
            raise WanimateError(
                f"--cfg-parallel must be one of {', '.join(CFG_PARALLEL_MODES)}, not {self.cfg_parallel!r}"
            )


@dataclass(frozen=True)
class Layout:
    """The split: ``world = cfg * ulysses``; ``uneven`` when Ulysses must pad heads or split tokens unevenly."""

    world: int
    cfg: int
    ulysses: int
    uneven: bool = False

    @property
    def sequence_parallel(self) -> bool:
        return self.ulysses > 1

    def describe(self) -> str:
        parts = []
        if self.cfg > 1:
            parts.append("CFG parallel (cond | uncond)")
        if self.ulysses > 1:
            parts.append(f"Ulysses x{self.ulysses}" + (" (uneven)" if self.uneven else ""))
        return f"{self.world} ranks: " + (" + ".join(parts) or "one rank")


def _divisors(n: int) -> list[int]:
    return [d for d in range(2, n + 1) if n % d == 0]


def _even_degrees(heads: int, tokens: int, limit: int) -> list[int]:
    return [d for d in _divisors(heads) if tokens % d == 0 and d <= limit]


def _splittable(heads: int, tokens: int, ulysses: int) -> bool:
    """Whether diffusers' Ulysses can shard ``heads`` and ``tokens`` over ``ulysses`` ranks (evenly or not)."""
    if ulysses > tokens:
        return False
    local = -(-heads // ulysses)
    return heads % ulysses == 0 or local * ulysses - heads < local  # uneven mode pads less than one rank's heads


def _working_counts(heads: int, tokens: int, cfg: int, limit: int = 16) -> str:
    counts = [u * cfg for u in range(2, limit + 1) if _splittable(heads, tokens, u) and u * cfg <= limit]
    return ", ".join(str(n) for n in counts[:8]) or "1"


def choose_layout(
    world: int, *, guidance: float, heads: int, tokens: int, cfg_parallel: CfgParallel = "auto"
) -> Layout:
    """The layout for ``world`` ranks, ``heads`` attention heads and ``tokens`` tokens per segment.

    Refuses only what cannot run at all, in one line that names rank counts that would.
    """
    guided = guidance > 1.0
    if cfg_parallel == "on" and not guided:
        raise WanimateError("--cfg-parallel on needs --guidance above 1 (there is no unconditional pass to split off)")
    if cfg_parallel == "on" and world % 2:
        raise WanimateError(f"--cfg-parallel on needs an even rank count; use --gpus {world - 1} or {world + 1}")
    cfg = 2 if guided and world % 2 == 0 and cfg_parallel != "off" else 1
    ulysses = world // cfg
    if ulysses > 1 and not _splittable(heads, tokens, ulysses):
        raise WanimateError(
            f"{heads} attention heads and {tokens} tokens per segment cannot be split across {ulysses} sequence "
            f"shards; use --gpus {_working_counts(heads, tokens, cfg)}"
        )
    uneven = ulysses > 1 and (heads % ulysses != 0 or tokens % ulysses != 0)
    return Layout(world=world, cfg=cfg, ulysses=ulysses, uneven=uneven)


def even_alternatives(layout: Layout, heads: int, tokens: int, limit: int = 16) -> str:
    """Rank counts near this layout that would split heads and tokens evenly (for the uneven-mode notice)."""
    options = sorted({d * layout.cfg for d in _even_degrees(heads, tokens, limit)})
    return ", ".join(str(n) for n in options[:6]) or "none up to 16"
