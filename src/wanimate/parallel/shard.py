"""Where a rank's tokens sit in the full sequence, and the uneven gather gloo needs.

diffusers' context-parallel hooks split the token sequence at ``blocks.0`` with
``torch.chunk`` (equal parts) or, in "anything" mode, ``torch.tensor_split``. Code that
must know a token's global position (the frame-local face attention) reads it from a
:class:`SequenceShard`, refreshed from each forward's latent shape before the hooks
split anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from diffusers.hooks import HookRegistry, ModelHook

SHARD_HOOK = "wanimate_sequence_shard"


@dataclass
class SequenceShard:
    """Where this rank's tokens sit in the full sequence; refreshed from every forward's input shape.

    ``uneven`` follows ``torch.tensor_split`` (diffusers' "anything" sharder), otherwise
    ``torch.chunk`` with equal parts.
    """

    rank: int
    world: int
    uneven: bool
    patch: tuple[int, int, int]
    group: Any = None  # the Ulysses process group
    tokens: int = 0
    tokens_per_frame: int = 0
    sizes: list[int] = field(default_factory=list)

    def update(self, latent_shape: torch.Size) -> None:
        _, _, frames, height, width = latent_shape
        p_t, p_h, p_w = self.patch
        self.tokens_per_frame = (height // p_h) * (width // p_w)
        self.tokens = (frames // p_t) * self.tokens_per_frame
        base, extra = divmod(self.tokens, self.world)
        self.sizes = [base + (1 if self.uneven and r < extra else 0) for r in range(self.world)]

    @property
    def start(self) -> int:
        return sum(self.sizes[: self.rank])


class _ShardHook(ModelHook):
    """Reads the latent grid of each transformer call, before diffusers' hooks split anything."""

    def __init__(self, shard: SequenceShard) -> None:
        super().__init__()
        self.shard = shard

    def pre_forward(self, module: torch.nn.Module, *args, **kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        self.shard.update(hidden.shape)
        return args, kwargs


def track_shard(transformer: torch.nn.Module, shard: SequenceShard) -> None:
    HookRegistry.check_if_exists_or_initialize(transformer).register_hook(_ShardHook(shard), SHARD_HOOK)


GATHER_HOOK = "wanimate_uneven_gather"


class _UnevenGather(ModelHook):
    """All-gather unequal sequence shards by padding each to the longest (gloo's all_gather needs equal sizes).

    Stands in for diffusers' ``ContextParallelOutput`` gather in "anything" mode, whose
    unequal ``all_gather`` NCCL accepts but gloo rejects.
    """

    def __init__(self, shard: SequenceShard) -> None:
        super().__init__()
        self.shard = shard

    def post_forward(self, module: torch.nn.Module, output: torch.Tensor) -> torch.Tensor:
        sizes = self.shard.sizes
        longest = max(sizes)
        padded = F.pad(output, (0, 0, 0, longest - output.shape[1])).contiguous()
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded, group=self.shard.group)
        return torch.cat([part[:, :size] for part, size in zip(parts, sizes, strict=True)], dim=1)


def gather_unevenly(module: torch.nn.Module, shard: SequenceShard) -> None:
    HookRegistry.check_if_exists_or_initialize(module).register_hook(_UnevenGather(shard), GATHER_HOOK)
