"""``generate`` on N ranks: under ``torchrun``, or spawned here (``wanimate generate --gpus N``).

Every rank loads the model and runs the denoise; rank 0 alone reads and writes the
work folder and the video, so resuming works exactly as on one GPU (and a run killed
on 8 GPUs may be resumed on 4, or on 1: the segments do not depend on the layout).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.generate.engine import ProgressCallback, ProgressEvent
from wanimate.generate.settings import DEFAULT_WEIGHTS, GenerateSettings
from wanimate.parallel.layout import Layout, ParallelSettings, choose_layout, even_alternatives
from wanimate.parallel.ranks import join_group, launched, leave_group, make_ranks

log = logging.getLogger("wanimate")
# Components rank 0 alone uses; the other ranks let them go before the model moves to its device.
WRITER_ONLY = ("text_encoder", "image_encoder")


@dataclass(frozen=True)
class RankJob:
    """Everything a rank needs, picklable for the spawn start method."""

    materials: Path
    output: Path
    settings: GenerateSettings
    parallel: ParallelSettings
    weights: str | None = None  # None: the model's default (settings decide which model)
    adapter: str = "auto"
    base: str | None = None
    work_dir: Path | None = None
    resume: bool = True
    keep_work: bool = False
    save_frames: Path | None = None
    audio: bool = True
    overwrite: bool = False

    def request(self, model: Any = None, materials: Any = None) -> Any:
        """The job's paths checked as one-device ``generate`` checks them (:func:`check_request`)."""
        from wanimate.generate.pipeline import check_request

        return check_request(
            self.materials if materials is None else materials,
            self.output,
            self.settings,
            weights=self.weights,
            adapter=self.adapter,
            base=self.base,
            model=model,
            work_dir=self.work_dir,
            save_frames=self.save_frames,
            audio=self.audio,
            overwrite=self.overwrite,
        )


def layout_for(
    transformer: Any,
    height: int,
    width: int,
    settings: GenerateSettings,
    parallel: ParallelSettings,
    world: int,
    *,
    notify: bool = False,
) -> Layout:
    """The layout for ``world`` ranks, sized from the transformer's heads and the segment's token count.

    ``notify``: say (once, from rank 0) when Ulysses must split unevenly, and which rank counts would not.
    """
    from wanimate.parallel.plans import plan_for

    plan = plan_for(transformer)
    heads, tokens = plan.heads(transformer), plan.tokens(transformer, settings.segment_frames, height, width)
    layout = choose_layout(
        world, guidance=settings.guidance, heads=heads, tokens=tokens, cfg_parallel=parallel.cfg_parallel
    )
    if notify and layout.uneven:
        log.warning(
            "%d heads and %d tokens per segment do not both divide by %d sequence shards: using uneven Ulysses "
            "(exact, a little slower); --gpus %s would divide evenly",
            heads,
            tokens,
            layout.ulysses,
            even_alternatives(layout, heads, tokens),
        )
    return layout


def check_supported(settings: GenerateSettings) -> None:
    if settings.offload != "none" or settings.vram_budget is not None:
        raise WanimateError("--offload/--vram-budget do not combine with --gpus; use --fsdp to shard the weights")
    if settings.cache != "none":
        raise WanimateError("--cache does not combine with --gpus (each rank would skip steps on its own shard)")


def load_on_host(job: RankJob, writer: bool) -> tuple[Any, Any]:
    """The job's model loaded on the host, and its materials (a path, or the loaded N-character folder).

    The settings' class says which model: :class:`~wanimate.multianimate.settings.MultiAnimateSettings`
    loads MultiAnimate (the characters, read first, choose its checkpoint), anything else Wan2.2-Animate.
    Ranks other than 0 drop the encoders only rank 0 runs before the model moves to their device.
    """
    from wanimate.multianimate.settings import MultiAnimateSettings

    dtype = job.settings.torch_dtype
    materials: Any = job.materials
    if isinstance(job.settings, MultiAnimateSettings):
        from wanimate.materials.characters import load_character_materials
        from wanimate.multianimate.loading import load_multianimate

        materials = load_character_materials(job.materials)
        model: Any = load_multianimate(
            job.weights, job.adapter, characters=materials.characters, dtype=dtype, progress=writer, base=job.base
        )
    else:
        from wanimate.models.loading import load_model

        weights = job.weights or DEFAULT_WEIGHTS
        model = load_model(weights, dtype=dtype, device="cpu", base=job.base, progress=writer)
    if not writer:
        for name in WRITER_ONLY:
            setattr(model.pipeline, name, None)
    return model, materials


def generate_rank(job: RankJob, progress: ProgressCallback | None = None, *, hold_work: bool = True) -> Path | None:
    """This process's part of a multi-rank generation; returns the output on rank 0, ``None`` elsewhere.

    ``hold_work``: rank 0 locks the work folder itself (under ``torchrun``); spawned ranks run while
    the process that spawned them holds it.

    Order: join the group → load on the host → drop what only rank 0 uses → shard/hook
    the transformer → place on this rank's device (inside the generator) → run.
    """
    import warnings

    from wanimate.generate.pipeline import open_work, prepare, resume_point, save_segments, write_result
    from wanimate.parallel.engine import parallel_generator
    from wanimate.parallel.setup import ParallelModel
    from wanimate.paths import os_faults

    # diffusers' CP gather calls a torch collective torch has deprecated; nothing a user can act on.
    warnings.filterwarnings("ignore", message=".*all_gather_tensor.*deprecated", category=FutureWarning)
    check_supported(job.settings)
    kind = job.settings.resolved_device().type
    if kind not in ("cuda", "cpu"):
        raise WanimateError(f"--gpus runs on CUDA GPUs or CPU ranks, not on {kind}")
    rank, world, _, device = join_group(kind)
    if kind == "cpu":  # CPU ranks share the cores: one rank per core stands in for one rank per GPU
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    writer = rank == 0
    try:
        settings = dataclasses.replace(job.settings, device=str(device))
        model, materials = load_on_host(job, writer)
        request = job.request(model, materials)
        prepared = prepare(request, settings, weights=job.weights, adapter=job.adapter, base=job.base, model=model)
        mats = prepared.materials
        transformer = model.pipeline.transformer
        layout = layout_for(transformer, mats.height, mats.width, settings, job.parallel, world, notify=writer)
        ranks = make_ranks(layout, device)
        ParallelModel(transformer, ranks, fsdp=job.parallel.fsdp)
        notify = progress if (progress is not None and writer) else (lambda event: None)
        generator = parallel_generator(prepared.model, mats, prepared.settings, ranks, progress=notify)
        total = generator.plan.num_segments
        with contextlib.ExitStack() as stack:
            folder = None
            if writer:  # rank 0 alone holds the work folder
                stack.enter_context(os_faults())
                if hold_work:
                    stack.enter_context(request.work)
                folder = open_work(prepared, job.resume)
            done, state = resume_point(folder, total, prepared.settings, notify) if folder else (0, None)
            done = ranks.share_int(done)
            outputs = generator.run(start=done, resume=state) if done < total else iter(())
            if folder is not None:
                save_segments(outputs, folder, total, notify)
            else:
                for _ in outputs:
                    pass
            ranks.barrier()
            if folder is None:
                return None
            write_result(folder, prepared, total, keep_work=job.keep_work, notify=notify)
        return job.output
    finally:
        leave_group()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """On Linux, a rank gets SIGKILL when the process that spawned it dies (even by ``kill -9``): no orphans."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _spawned(index: int, world: int, port: int, job: RankJob, events: Any) -> None:
    """Entry point of a spawned rank: environment as torchrun would set it, errors reported in one line."""
    from wanimate.cli import configure_logging

    os.environ.update(
        RANK=str(index), WORLD_SIZE=str(world), LOCAL_RANK=str(index), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    _die_with_parent()
    configure_logging()  # a spawned rank starts with fresh loggers: as quiet as the command that spawned it
    try:
        generate_rank(job, progress=events.put if index == 0 else None, hold_work=False)
    except WanimateError as exc:
        events.put(("error", str(exc)))
        raise SystemExit(exc.exit_code) from None


def generate_parallel(job: RankJob, progress: ProgressCallback | None = None) -> Path:
    """Spawn ``job.parallel.gpus`` ranks on this machine, relay rank 0's progress, and wait for all of them.

    When one rank dies (killed, out of memory, an error) the others are stopped, and
    the error says that running the same command again resumes.
    """
    import torch.multiprocessing as mp

    from wanimate.paths import os_faults

    world = job.parallel.gpus
    check_supported(job.settings)
    request = job.request()  # bad paths and inputs are one line here, before any rank starts
    with os_faults(), request.work:  # held here for the ranks: a second command cannot take the folder meanwhile
        context = mp.get_context("spawn")
        events = context.SimpleQueue()
        procs = mp.start_processes(
            _spawned, args=(world, free_port(), job, events), nprocs=world, join=False, start_method="spawn"
        )
        error: list[str] = []
        relay = _Relay(events, progress, error)
        relay.start()
        try:
            while not procs.join(timeout=0.5):
                pass
        except mp.ProcessExitedException as exc:
            relay.stop()  # drain first: a rank's own error line may still be in the queue
            raise WanimateError(_died(exc, error, world)) from None
        except mp.ProcessRaisedException as exc:
            raise WanimateError(f"rank {exc.error_index} failed: {exc.msg.strip().splitlines()[-1]}") from None
        finally:
            relay.stop()
    return job.output


def _died(exc: Any, error: list[str], world: int) -> str:
    if error:
        return error[0]
    how = f"signal {exc.signal_name}" if exc.signal_name else f"exit code {exc.exit_code}"
    return (
        f"rank {exc.error_index} of {world} stopped ({how}) and the others were stopped; "
        "run the same command again to resume from the last finished segment"
    )


class _Relay(threading.Thread):
    """Drains rank 0's events into the caller's progress callback (and keeps the first error line)."""

    def __init__(self, events: Any, progress: ProgressCallback | None, error: list[str]) -> None:
        super().__init__(name="rank-progress", daemon=True)
        self.events = events
        self.progress = progress
        self.error = error
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.is_set() or not self.events.empty():
            if self.events.empty():
                self._finished.wait(0.05)
                continue
            self._handle(self.events.get())

    def _handle(self, item: Any) -> None:
        if isinstance(item, ProgressEvent):
            if self.progress is not None:
                self.progress(item)
        elif isinstance(item, tuple) and item[0] == "error":
            self.error.append(item[1])

    def stop(self) -> None:
        self._finished.set()
        self.join(timeout=5)


def run_generation(job: RankJob, progress: ProgressCallback | None = None) -> Path | None:
    """The one entry point: join ``torchrun``'s ranks, spawn ``--gpus N`` ranks, or run on one device."""
    if launched():
        return generate_rank(job, progress)
    if job.parallel.gpus > 1:
        return generate_parallel(job, progress)
    from wanimate.generate.pipeline import generate

    return generate(
        job.materials,
        job.output,
        settings=job.settings,
        weights=job.weights,
        adapter=job.adapter,
        base=job.base,
        work_dir=job.work_dir,
        resume=job.resume,
        keep_work=job.keep_work,
        save_frames=job.save_frames,
        audio=job.audio,
        overwrite=job.overwrite,
        progress=progress,
    )
