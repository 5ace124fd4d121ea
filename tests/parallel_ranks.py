"""Spawned CPU ranks (gloo on 127.0.0.1) that run several engine cases in one process group.

Process start-up dominates on a 2-core machine, so one group of ranks runs every case
of a test module; rank 0 saves each case's float frames for the test to compare. A
``job`` case goes through ``generate_rank`` (what ``generate --gpus N`` runs on each rank:
loading, the work folder, the video); it leaves the process group, so it comes last.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

RANK_TIMEOUT_S = 300
MULTIANIMATE_BASE = dict(segment_frames=9, prompt="w1 w2", negative_prompt="w4", dtype="fp32", device="cpu")


@dataclass(frozen=True)
class Case:
    name: str
    materials: Path
    settings: dict
    model: str = "tiny"
    cfg_parallel: str = "auto"
    fsdp: bool = False
    stock_face: bool = False  # keep diffusers' face processors (with the CP config enable_parallelism gives them)
    multianimate: bool = False  # N-character materials, a random MultiAnimate model (3 characters)
    job: bool = False  # through generate_rank into <out>/<name>.mp4, work kept


def settings_of(case: Case) -> Any:
    """The settings the case runs with, on one rank or several."""
    from engine_runs import BASE

    from wanimate.generate.settings import GenerateSettings
    from wanimate.multianimate.settings import MultiAnimateSettings

    if case.multianimate:
        return MultiAnimateSettings(**{**MULTIANIMATE_BASE, **case.settings})
    return GenerateSettings(**{**BASE, **case.settings})


def model_of(case: Case) -> tuple[Any, Any, Any]:
    """A fresh random model of the case (the same on every rank), its materials and its transformer."""
    from wanimate.materials import load_materials
    from wanimate.materials.characters import load_character_materials
    from wanimate.models.factory import build_pipeline
    from wanimate.multianimate.loading import load_multianimate

    if case.multianimate:
        model = load_multianimate(f"random:{case.model}", "random:3", dtype=torch.float32, progress=False)
        return model, load_character_materials(case.materials), model.pipeline.transformer
    pipe = build_pipeline(case.model)
    return pipe, load_materials(case.materials), pipe.transformer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(index: int, world: int, port: int, cases: list[Case], out: Path) -> None:
    os.environ.update(RANK=str(index), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from diffusers.models.transformers.transformer_wan_animate import WanAnimateFaceBlockAttnProcessor

    from wanimate.parallel.engine import parallel_generator
    from wanimate.parallel.layout import ParallelSettings
    from wanimate.parallel.ranks import join_group, leave_group, make_ranks
    from wanimate.parallel.run import RankJob, generate_rank, layout_for
    from wanimate.parallel.setup import ParallelModel

    _, _, _, device = join_group("cpu")
    try:
        for case in cases:
            settings = settings_of(case)
            parallel = ParallelSettings(gpus=world, cfg_parallel=case.cfg_parallel, fsdp=case.fsdp)
            if case.job:
                weights = f"random:{case.model}"
                job = RankJob(case.materials, out / f"{case.name}.mp4", settings, parallel, weights=weights,
                              adapter="random:3", keep_work=True, audio=False)  # fmt: skip
                generate_rank(job)
                continue
            pipe, materials, transformer = model_of(case)
            layout = layout_for(transformer, materials.height, materials.width, settings, parallel, world)
            ranks = make_ranks(layout, device)
            ParallelModel(transformer, ranks, fsdp=case.fsdp)
            if case.stock_face:
                for adapter in transformer.face_adapter:
                    stock = WanAnimateFaceBlockAttnProcessor()
                    stock._parallel_config = transformer._parallel_config
                    adapter.set_processor(stock)
            seen: list[int] = []  # the tokens block 0 works on in this rank: a shard of the sequence, or all of it
            probe = transformer.blocks[0].norm1.register_forward_pre_hook(
                lambda module, args, seen=seen: seen.append(args[0].shape[1])
            )
            generator = parallel_generator(pipe, materials, settings, ranks)
            frames = [o.frames for o in generator.run()]
            probe.remove()
            if index == 0:
                np.save(out / f"{case.name}.npy", torch.cat(frames).numpy())
                (out / f"{case.name}.layout").write_text(layout.describe())
                (out / f"{case.name}.tokens").write_text(str(seen[0]))
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
