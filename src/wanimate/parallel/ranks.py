"""One rank's view of the process group: its device, its mesh coordinates, the collectives the engine needs.

Ranks come from torch.distributed's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``), set by ``torchrun`` or by
``wanimate generate --gpus N``. GPUs use NCCL for tensors and gloo for the small
host-side messages; CPU ranks use gloo for everything (that is how the tests run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from wanimate.parallel.layout import Layout

MESH_DIMS = ("cfg", "ring", "ulysses")
# A rank that waits longer than this on a collective gives up (a peer died or hung).
COLLECTIVE_TIMEOUT = timedelta(minutes=30)


@dataclass
class Ranks:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    layout: Layout
    mesh: DeviceMesh

    @property
    def writer(self) -> bool:
        """Rank 0 runs the encoders and the VAE, and is the only one that writes files."""
        return self.rank == 0

    @property
    def cfg_rank(self) -> int:
        """0 runs the conditional pass, 1 the unconditional one (CFG parallel)."""
        return self.mesh["cfg"].get_local_rank()

    @property
    def ulysses_rank(self) -> int:
        return self.mesh["ulysses"].get_local_rank()

    def all_gather_cfg(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """This rank's pass output and its partner's, in cfg order (cond, uncond)."""
        parts = [torch.empty_like(tensor) for _ in range(self.layout.cfg)]
        dist.all_gather(parts, tensor.contiguous(), group=self.mesh["cfg"].get_group())
        return parts

    def share(self, values: dict[str, torch.Tensor | None] | None) -> dict[str, torch.Tensor | None]:
        """Rank 0's named tensors (values may be ``None``) on every rank, on each rank's device."""
        meta: list[Any] = [None]
        if self.writer:
            assert values is not None
            meta[0] = {name: None if t is None else (tuple(t.shape), t.dtype) for name, t in values.items()}
        dist.broadcast_object_list(meta, src=0)
        out: dict[str, torch.Tensor | None] = {}
        for name, spec in meta[0].items():
            if spec is None:
                out[name] = None
                continue
            if self.writer:
                tensor = values[name].to(self.device).contiguous()  # type: ignore[index,union-attr]
            else:
                tensor = torch.empty(spec[0], dtype=spec[1], device=self.device)
            dist.broadcast(tensor, src=0)
            out[name] = tensor
        return out

    def share_int(self, value: int | None) -> int:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return int(box[0])  # type: ignore[arg-type]

    def barrier(self) -> None:
        dist.barrier()


def launched() -> bool:
    """Whether this process is one rank of several (``torchrun`` or our own spawner set the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def rank_device(kind: str, local_rank: int) -> torch.device:
    return torch.device("cuda", local_rank) if kind == "cuda" else torch.device("cpu")


def join_group(kind: str) -> tuple[int, int, int, torch.device]:
    """Join the process group named by the environment: (rank, world, local rank, this rank's device)."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = rank_device(kind, local_rank)
    if kind == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if kind == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT)
    return rank, world, local_rank, device


def make_ranks(layout: Layout, device: torch.device) -> Ranks:
    """This rank in the (cfg, ring, ulysses) mesh of ``layout``."""
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    mesh = init_device_mesh(device.type, (layout.cfg, 1, layout.ulysses), mesh_dim_names=MESH_DIMS)
    return Ranks(rank=rank, world=world, local_rank=local_rank, device=device, layout=layout, mesh=mesh)


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def host_counts_as_one_accelerator() -> Iterator[None]:
    """Let diffusers' parallel setup run on a machine with no accelerator (CPU ranks, gloo).

    ``ModelMixin._resolve_parallel_config`` names each rank's device as
    ``rank % torch.accelerator.device_count()``, a ZeroDivisionError when the count is
    0, even though context parallelism never uses that device (the mesh and the
    tensors decide). Only while that call runs, and only when there is no
    accelerator, the count reads 1. Anywhere else, and on GPU machines, nothing changes.
    """
    if torch.accelerator.device_count() > 0:
        yield
        return
    original = torch.accelerator.device_count
    torch.accelerator.device_count = lambda *args: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = original
