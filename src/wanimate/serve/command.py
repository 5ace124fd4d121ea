"""``wanimate serve`` and ``wanimate bench serve``.

FastAPI and uvicorn come with the ``[serve]`` extra and are imported inside the
commands, so the rest of the CLI works without them.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.errors import WanimateError

DEFAULT_WEIGHTS = ("Wan-AI/Wan2.2-Animate-14B", "random:tiny")


def _need_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise WanimateError("the server needs the serve extra: pip install 'wanimate[serve]'") from None


def serve_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback needs WANIMATE_TOKEN."),
    port: int = typer.Option(8000, help="TCP port."),
    data_dir: Path = typer.Option(Path("wanimate-serve"), help="Job workspaces, the queue database, worker files."),
    db: Path | None = typer.Option(None, help="SQLite queue file (default: DATA_DIR/jobs.sqlite3)."),
    input_root: Path | None = typer.Option(
        None, help="Let clients name server-side files under this folder instead of uploading."
    ),
    max_image_mb: float = typer.Option(20, help="Largest character image accepted, MiB."),
    max_video_mb: float = typer.Option(500, help="Largest driving video accepted, MiB."),
    retention_hours: float = typer.Option(168, help="Finished jobs and their files are deleted after this long."),
    cpu_jobs: int = typer.Option(1, help="Preview-backend jobs that may run at once (beside the Wan job)."),
    gpu_jobs: int | None = typer.Option(None, help="Wan jobs at once (default: one per GPU, one on CPU)."),
    rate: float = typer.Option(20, help="Requests per second per client (bursts of 10x); 0 disables."),
    submit_rate: float = typer.Option(1, help="Job submissions per second per client (bursts of 30); 0 disables."),
    weights: list[str] = typer.Option(
        list(DEFAULT_WEIGHTS), "--weights", help="Weights clients may ask for (repeat); never arbitrary paths."
    ),
    ray: str | None = typer.Option(
        None, "--ray", help="Run the jobs on this Ray cluster (auto or HOST:PORT) instead of the local worker."
    ),
    gpus_per_job: int = typer.Option(1, help="With --ray: GPUs per job (0: the cluster's CPUs)."),
) -> None:
    """Serve the REST API, the browser page (/) and the OpenAPI docs (/docs), with a worker process."""
    _need_extra()
    from wanimate.serve.config import MIB, ServeConfig
    from wanimate.serve.server import serve

    config = ServeConfig(
        host=host,
        port=port,
        data_dir=data_dir,
        db_path=db,
        input_root=input_root,
        max_image_bytes=int(max_image_mb * MIB),
        max_video_bytes=int(max_video_mb * MIB),
        retention_s=retention_hours * 3600,
        cpu_jobs=cpu_jobs,
        gpu_jobs=gpu_jobs,
        rate_per_s=rate,
        rate_burst=max(1, int(rate * 10)),
        submit_per_s=submit_rate,
        allowed_weights=tuple(weights),
        ray_address=ray,
        gpus_per_job=gpus_per_job,
    )
    config.validate()
    if ray is not None:
        from wanimate.batch.cluster import need_ray

        need_ray()
    serve(config)


def bench_serve_command(
    requests: int = typer.Option(2000, help="GET requests per endpoint for the latency figures."),
    concurrency: int = typer.Option(8, help="Clients sending those requests at once."),
    jobs: int = typer.Option(10, help="Preview jobs for the throughput figure."),
    frames: int = typer.Option(12, help="Frames of the tiny driving clip each job animates."),
    cpu_jobs: int = typer.Option(2, help="Preview jobs the worker runs at once."),
    timeout: float = typer.Option(600, help="Give up on the throughput run after this many seconds."),
) -> None:
    """API latency (p50/p95) and preview-job throughput of a server on a free loopback port."""
    _need_extra()

    from wanimate.bench import print_metrics
    from wanimate.bench.serve import bench_serve

    result = bench_serve(
        requests=requests, concurrency=concurrency, jobs=jobs, frames=frames, cpu_jobs=cpu_jobs, timeout=timeout
    )
    print_metrics("wanimate bench serve", result)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    bench_app.command("serve")(bench_serve_command)
