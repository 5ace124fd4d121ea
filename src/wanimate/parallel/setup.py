"""Making a loaded transformer parallel: Ulysses through diffusers' hooks, FSDP through torch.

:class:`ParallelModel` owns every change it makes to the transformer and is the only
place that makes them, in one order: FSDP sharding (optional) → context-parallel hooks
→ the model's own fixes (for Animate, frame-local face attention).
"""

from __future__ import annotations

import torch

from wanimate.errors import WanimateError
from wanimate.parallel.plans import plan_for
from wanimate.parallel.ranks import Ranks, host_counts_as_one_accelerator
from wanimate.parallel.shard import SequenceShard


class ParallelModel:
    """The parallel state of one transformer on one rank."""

    def __init__(self, transformer: torch.nn.Module, ranks: Ranks, *, fsdp: bool = False) -> None:
        self.transformer = transformer
        self.ranks = ranks
        self.plan = plan_for(transformer)
        self.shard: SequenceShard | None = None
        if getattr(transformer, "_parallel_config", None) is not None:
            raise WanimateError("this transformer is already parallel; load the model again for another layout")
        if fsdp:
            shard_weights(transformer, ranks)
        if ranks.layout.sequence_parallel:
            self._enable_ulysses()

    def _enable_ulysses(self) -> None:
        from diffusers.models._modeling_parallel import ContextParallelConfig

        layout = self.ranks.layout
        config = ContextParallelConfig(
            ulysses_degree=layout.ulysses, ulysses_anything=layout.uneven, mesh=self.ranks.mesh
        )
        with host_counts_as_one_accelerator():
            self.transformer.enable_parallelism(config=config, cp_plan=self.plan.cp_plan(layout.uneven))
        self.shard = SequenceShard(
            rank=self.ranks.ulysses_rank,
            world=layout.ulysses,
            uneven=layout.uneven,
            patch=tuple(self.transformer.config.patch_size),
            group=self.ranks.mesh["ulysses"].get_group(),
        )
        self.plan.install(self.transformer, self.shard)


def shard_weights(transformer: torch.nn.Module, ranks: Ranks) -> None:
    """FSDP2 (``fully_shard``) over all ranks: each block's weights live 1/N per rank, gathered for its forward.

    For GPUs that cannot hold the 14B DiT alone. Every rank runs every block in the
    same order (CFG halves run the same blocks on different inputs), which is what
    FSDP's per-block all-gathers need.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(ranks.device.type, (ranks.world,), mesh_dim_names=("fsdp",))
    for block in transformer.blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=True)
    fully_shard(transformer, mesh=mesh, reshard_after_forward=True)
