"""``wanimate batch``: many runs from a jobs file, here or across a Ray cluster."""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.generate.settings import DEFAULT_WEIGHTS


def batch_command(
    jobs_file: Path = typer.Argument(..., help="Jobs: .jsonl (one JSON object per line) or .csv with a header row."),
    ray: str | None = typer.Option(
        None, "--ray", help="Run on a Ray cluster: auto (the one `ray start` runs here / RAY_ADDRESS) or HOST:PORT."
    ),
    gpus_per_job: int = typer.Option(1, help="GPUs each job's generation takes (0: CPU). Above 1: sequence parallel."),
    max_retries: int = typer.Option(3, help="Ray: times a job is retried when its worker dies (not on job errors)."),
    weights: str = typer.Option(DEFAULT_WEIGHTS, help="Weights for jobs that do not name their own."),
) -> None:
    """Run every job of a jobs file; a failed job is reported and does not stop the others."""
    from wanimate.batch.jobs import read_jobs
    from wanimate.batch.progress import BatchDisplay
    from wanimate.batch.runner import run_batch
    from wanimate.native_logs import quiet_native_logs

    jobs = read_jobs(jobs_file, weights=weights)
    with quiet_native_logs(), BatchDisplay([job.name for job in jobs]) as display:
        statuses = run_batch(
            jobs, ray=ray, gpus_per_job=gpus_per_job, max_retries=max_retries, on_update=display.update
        )
        display.update(statuses)
    display.summary()
    if any(s.state != "done" for s in statuses.values()):
        raise typer.Exit(1)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("batch")(batch_command)
