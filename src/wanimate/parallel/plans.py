"""Context-parallel plans, one per transformer class, in diffusers' ``_cp_plan`` format.

A plan says where diffusers' hooks split the sequence across Ulysses ranks and where
they gather it back, plus whatever the model needs beyond that (Wan-Animate: its face
adapters). Both transformers start from diffusers' own plan for ``WanTransformer3DModel``:
Wan-Animate adds frame-local face attention; MultiAnimate's base (Wan2.1-I2V) needs nothing
more, since its pose/identity condition is added to the patch embedding's output, before the
split at block 0 (:mod:`wanimate.multianimate.condition`). A model plugs in by registering a
:class:`TransformerPlan` under its class name; nothing else in the parallel layer knows which
model it drives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.parallel.face import FrameLocalFaceProcessor
from wanimate.parallel.shard import SequenceShard, gather_unevenly, track_shard

VAE_STRIDE = (4, 8, 8)  # Wan2.1 VAE: time, height, width


@dataclass(frozen=True)
class TransformerPlan:
    """How to run one transformer class under Ulysses.

    ``cp_plan(uneven)``: diffusers' module-name → split/gather map. ``install`` runs after
    ``enable_parallelism`` and fixes what the hooks alone get wrong (it receives the
    rank's :class:`SequenceShard`). ``heads`` and ``tokens`` size the layout.
    """

    cp_plan: Callable[[bool], dict[str, Any]]
    install: Callable[[torch.nn.Module, SequenceShard], None]
    heads: Callable[[torch.nn.Module], int]
    tokens: Callable[[torch.nn.Module, int, int, int], int]


def _wan_cp_plan(uneven: bool) -> dict[str, Any]:
    """diffusers' ``WanTransformer3DModel._cp_plan`` without its ``""`` entry (both models' timestep is 1-D).

    RoPE's cos/sin and the token sequence entering block 0 are split on the sequence
    dimension; ``proj_out``'s output is gathered. The text+CLIP context is not split
    (cross-attention: local queries against the full context). Wan-Animate's pose embedding
    and MultiAnimate's condition are added before the flatten, so they arrive already inside
    the split sequence. With uneven shards ``proj_out`` is gathered by :func:`gather_unevenly`
    instead.
    """
    from diffusers import WanTransformer3DModel

    skip = {"", "proj_out"} if uneven else {""}
    return {name: entry for name, entry in WanTransformer3DModel._cp_plan.items() if name not in skip}


def _track(transformer: torch.nn.Module, shard: SequenceShard) -> None:
    track_shard(transformer, shard)
    if shard.uneven:
        gather_unevenly(transformer.proj_out, shard)


def _animate_install(transformer: torch.nn.Module, shard: SequenceShard) -> None:
    """Frame-local face attention in every adapter (``enable_parallelism`` gave them a CP config: wrong)."""
    _track(transformer, shard)
    for adapter in transformer.face_adapter:
        backend = getattr(adapter.processor, "_attention_backend", None)
        adapter.set_processor(FrameLocalFaceProcessor(shard, backend))


def _tokens(extra_frames: int) -> Callable[[torch.nn.Module, int, int, int], int]:
    """Tokens per segment: (latent frames + ``extra_frames``) × patches per frame."""

    def tokens(transformer: torch.nn.Module, frames: int, height: int, width: int) -> int:
        p_t, p_h, p_w = transformer.config.patch_size
        latent_frames = (frames - 1) // VAE_STRIDE[0] + 1 + extra_frames
        return (latent_frames // p_t) * (height // VAE_STRIDE[1] // p_h) * (width // VAE_STRIDE[2] // p_w)

    return tokens


PLANS: dict[str, TransformerPlan] = {
    # Wan2.2-Animate: the reference image is one more latent frame.
    "WanAnimateTransformer3DModel": TransformerPlan(
        cp_plan=_wan_cp_plan,
        install=_animate_install,
        heads=lambda t: t.config.num_attention_heads,
        tokens=_tokens(extra_frames=1),
    ),
    # MultiAnimate's Wan2.1-I2V base: the first frame is given through the channels, not a frame more.
    "WanTransformer3DModel": TransformerPlan(
        cp_plan=_wan_cp_plan,
        install=_track,
        heads=lambda t: t.config.num_attention_heads,
        tokens=_tokens(extra_frames=0),
    ),
}


def plan_for(transformer: torch.nn.Module) -> TransformerPlan:
    name = type(transformer).__name__
    if name not in PLANS:
        raise WanimateError(f"no sequence-parallel plan for {name}; parallel generation supports {', '.join(PLANS)}")
    return PLANS[name]
