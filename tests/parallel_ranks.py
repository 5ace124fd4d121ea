"""Spawned CPU ranks (gloo on 127.0.0.1) that run several engine cases in one process group.

Process start-up dominates on a 2-core machine, so one group of ranks runs every case
of a test module; rank 0 saves each case's float frames for the test to compare.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

RANK_TIMEOUT_S = 300


@dataclass(frozen=True)
class Case:
    name: str
    materials: Path
    settings: dict
    model: str = "tiny"
    cfg_parallel: str = "auto"
    fsdp: bool = False
    stock_face: bool = False  # keep diffusers' face processors (with the CP config enable_parallelism gives them)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(index: int, world: int, port: int, cases: list[Case], out: Path) -> None:
    os.environ.update(RANK=str(index), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from diffusers.models.transformers.transformer_wan_animate import WanAnimateFaceBlockAttnProcessor
    from engine_runs import BASE

    from wanimate.generate.settings import GenerateSettings
    from wanimate.materials import load_materials
    from wanimate.models.factory import build_pipeline
    from wanimate.parallel.engine import parallel_generator
    from wanimate.parallel.layout import ParallelSettings
    from wanimate.parallel.ranks import join_group, leave_group, make_ranks
    from wanimate.parallel.run import layout_for
    from wanimate.parallel.setup import ParallelModel

    _, _, _, device = join_group("cpu")
    try:
        for case in cases:
            settings = GenerateSettings(**{**BASE, **case.settings})
            materials = load_materials(case.materials)
            pipe = build_pipeline(case.model)
            parallel = ParallelSettings(gpus=world, cfg_parallel=case.cfg_parallel)
            layout = layout_for(pipe.transformer, materials.height, materials.width, settings, parallel, world)
            ranks = make_ranks(layout, device)
            ParallelModel(pipe.transformer, ranks, fsdp=case.fsdp)
            if case.stock_face:
                for adapter in pipe.transformer.face_adapter:
                    stock = WanAnimateFaceBlockAttnProcessor()
                    stock._parallel_config = pipe.transformer._parallel_config
                    adapter.set_processor(stock)
            generator = parallel_generator(pipe, materials, settings, ranks)
            frames = [o.frames for o in generator.run()]
            if index == 0:
                np.save(out / f"{case.name}.npy", torch.cat(frames).numpy())
                (out / f"{case.name}.layout").write_text(layout.describe())
    finally:
        leave_group()


def run_on_ranks(world: int, cases: list[Case], out: Path) -> None:
    """Run ``cases`` on ``world`` spawned ranks; every rank is gone when this returns or raises."""
    import torch.multiprocessing as mp

    context = mp.start_processes(
        _rank, args=(world, _free_port(), cases, out), nprocs=world, join=False, start_method="spawn"
    )
    try:
        import time

        deadline = time.monotonic() + RANK_TIMEOUT_S
        while not context.join(timeout=1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{world} ranks did not finish in {RANK_TIMEOUT_S} s")
    finally:
        for proc in context.processes:
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=10)
