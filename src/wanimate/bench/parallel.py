"""``wanimate bench parallel``: one video on 1, 2, 3 ranks, and a batch on 1 vs 2 Ray workers.

Both run on this machine's CPUs (gloo, a local Ray head), on random tiny weights with
a fixed workload, and are reported as ratios to the one-rank / one-worker baseline
of the same command. What they measure is the overhead of the parallel machinery
(process groups, all-to-alls, broadcasts, Ray scheduling) against work that is tiny
and CPU-bound; they do not measure GPU scaling (see docs/benchmarks.md).
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from wanimate.generate.engine import ProgressEvent


def _step_seconds(events: list[ProgressEvent]) -> float:
    """Median time between consecutive denoising steps of a segment (start-up and decode excluded)."""
    gaps = []
    for previous, event in itertools.pairwise(events):
        if event.stage == "step" and previous.stage == "step" and event.segment == previous.segment:
            gaps.append(event.elapsed - previous.elapsed)
    return statistics.median(gaps)


def bench_ranks(ranks: list[int], *, model: str, size: int, frames: int, steps: int, guidance: float) -> dict:
    """Seconds per denoising step with each rank count, and the ratio to one rank."""
    from wanimate.generate.settings import GenerateSettings
    from wanimate.materials.synthetic import write_materials
    from wanimate.parallel.layout import ParallelSettings
    from wanimate.parallel.run import RankJob, run_generation

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wanimate-bench-parallel-") as tmp:
        root = Path(tmp)
        mats = write_materials(root / "m", num_frames=frames, height=size, width=size, face_size=16)
        settings = GenerateSettings(steps=steps, guidance=guidance, segment_frames=9, dtype="fp32", device="cpu",
                                    prompt="w1 w2", negative_prompt="w4")  # fmt: skip
        base = None
        for count in ranks:
            events: list[ProgressEvent] = []
            output = root / f"o{count}.mp4"
            job = RankJob(mats, output, settings, ParallelSettings(gpus=count), weights=f"random:{model}", audio=False)
            started = time.monotonic()
            if count == 1:
                import torch

                threads = torch.get_num_threads()
                torch.set_num_threads(1)  # one thread per rank, as one device per rank
                try:
                    run_generation(job, progress=events.append)
                finally:
                    torch.set_num_threads(threads)
            else:
                run_generation(job, progress=events.append)
            per_step = _step_seconds(events)
            base = base or per_step
            result[f"{count} ranks: s/step"] = per_step
            result[f"{count} ranks: speed-up per step"] = base / per_step
            result[f"{count} ranks: wall s (incl. start-up)"] = time.monotonic() - started
    return result


def bench_ray_workers(workers: list[int], *, jobs: int, steps: int) -> dict:
    """Jobs per minute of a batch of tiny jobs on a local Ray head with each worker count."""
    import ray

    from wanimate.batch.jobs import read_jobs
    from wanimate.batch.runner import run_batch

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    result: dict[str, Any] = {}
    base = None
    for count in workers:
        with tempfile.TemporaryDirectory(prefix="wanimate-bench-ray-") as tmp:
            root = Path(tmp)
            lines = [
                f'{{"image": "example:astronaut", "video": "example:carphone", "output": "o{i}.mp4", "seed": {i}, '
                f'"weights": "random:tiny", "steps": {steps}, "segment_frames": 9, "dtype": "fp32", '
                f'"prompt": "w1", "area": [64, 64], "fps": 5}}'
                for i in range(jobs)
            ]
            (root / "jobs.jsonl").write_text("\n".join(lines) + "\n")
            batch = read_jobs(root / "jobs.jsonl")
            ray.init(num_cpus=count, object_store_memory=80 * 1024**2, include_dashboard=False, log_to_driver=False)
            try:
                started = time.monotonic()
                statuses = run_batch(batch, ray="auto", gpus_per_job=0)
                seconds = time.monotonic() - started
            finally:
                ray.shutdown()
            failed = [s.error for s in statuses.values() if s.state != "done"]
            if failed:
                raise RuntimeError(f"benchmark jobs failed: {failed[0]}")
            rate = jobs / seconds * 60
            base = base or rate
            result[f"{count} Ray workers: jobs/min"] = rate
            result[f"{count} Ray workers: throughput ratio"] = rate / base
    return result


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"
