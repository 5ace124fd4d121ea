"""Context-parallel plans, one per transformer class, in diffusers' ``_cp_plan`` format.

A plan says where diffusers' hooks split the sequence across Ulysses ranks and where
they gather it back, plus whatever the model needs beyond that (Wan-Animate: its face
adapters). A second model (MultiAnimate) plugs in by registering its own
:class:`TransformerPlan` under its class name; nothing else in the parallel layer
knows which model it drives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

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


def _animate_cp_plan(uneven: bool) -> dict[str, Any]:
    """Wan's plan without its ``""`` entry (Animate's timestep is 1-D, nothing to split there).

    RoPE's cos/sin and the token sequence entering block 0 are split on the sequence
    dimension; ``proj_out``'s output is gathered. The text+CLIP context is not split
    (cross-attention: local queries against the full context). The pose embedding is
    added before the flatten, so it arrives already inside the split sequence. With
    uneven shards ``proj_out`` is gathered by :func:`gather_unevenly` instead.
    """
    plan: dict[str, Any] = {
        "rope": {
            0: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
            1: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
        },
        "blocks.0": {"hidden_states": ContextParallelInput(split_dim=1, expected_dims=3, split_output=False)},
    }
    if not uneven:
        plan["proj_out"] = ContextParallelOutput(gather_dim=1, expected_dims=3)
    return plan


def _animate_install(transformer: torch.nn.Module, shard: SequenceShard) -> None:
    """Frame-local face attention in every adapter (``enable_parallelism`` gave them a CP config: wrong)."""
    track_shard(transformer, shard)
    if shard.uneven:
        gather_unevenly(transformer.proj_out, shard)
    for adapter in transformer.face_adapter:
        backend = getattr(adapter.processor, "_attention_backend", None)
        adapter.set_processor(FrameLocalFaceProcessor(shard, backend))


def _animate_tokens(transformer: torch.nn.Module, frames: int, height: int, width: int) -> int:
    """Tokens per segment: (latent frames + the reference frame) × patches per frame."""
    p_t, p_h, p_w = transformer.config.patch_size
    latent_frames = (frames - 1) // VAE_STRIDE[0] + 1 + 1
    return (latent_frames // p_t) * (height // VAE_STRIDE[1] // p_h) * (width // VAE_STRIDE[2] // p_w)


PLANS: dict[str, TransformerPlan] = {
    "WanAnimateTransformer3DModel": TransformerPlan(
        cp_plan=_animate_cp_plan,
        install=_animate_install,
        heads=lambda t: t.config.num_attention_heads,
        tokens=_animate_tokens,
    ),
}


def plan_for(transformer: torch.nn.Module) -> TransformerPlan:
    name = type(transformer).__name__
    if name not in PLANS:
        raise WanimateError(f"no sequence-parallel plan for {name}; parallel generation supports {', '.join(PLANS)}")
    return PLANS[name]
