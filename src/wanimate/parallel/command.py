"""``wanimate bench parallel`` (``--gpus`` itself is an option of ``wanimate generate``)."""

from __future__ import annotations

import typer


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def bench_parallel_command(
    ranks: str = typer.Option("1,2,3", help="Rank counts to compare (the first is the baseline)."),
    model: str = typer.Option("tiny6", help="Random model size (tiny6: 6 heads, splits over 2, 3 or 6 ranks)."),
    size: int = typer.Option(96, help="Frame side in pixels."),
    frames: int = typer.Option(17, help="Driving frames (segments of 9)."),
    steps: int = typer.Option(6, help="Denoising steps per segment."),
    guidance: float = typer.Option(1.0, help="CFG scale (above 1 with an even rank count: CFG parallel)."),
    workers: str = typer.Option("1,2", help="Ray worker counts for the batch throughput ('' to skip)."),
    jobs: int = typer.Option(4, help="Jobs in the throughput batch."),
) -> None:
    """CPU ranks (gloo) and local Ray workers on a fixed tiny workload, as ratios to one rank / one worker."""
    from wanimate.bench import print_metrics
    from wanimate.bench.parallel import bench_ranks, bench_ray_workers, load_note

    note = load_note()
    result = bench_ranks(_counts(ranks), model=model, size=size, frames=frames, steps=steps, guidance=guidance)
    if workers.strip():
        result.update(bench_ray_workers(_counts(workers), jobs=jobs, steps=steps))
    result["machine"] = f"{note} (before); {load_note()} (after)"
    print_metrics(f"wanimate bench parallel --model {model} --size {size} --steps {steps}", result)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    bench_app.command("parallel")(bench_parallel_command)
