"""Running a batch on a Ray cluster: preprocessing as CPU tasks, generation as GPU tasks, progress in an actor.

Every job's preprocessing task is submitted at once, so they fan out over the
cluster's CPUs while earlier jobs generate; each generation task takes the job's
preprocessing result as an argument, so Ray starts it when its materials exist, on
a worker with the GPUs it asks for. A worker that dies (``kill -9``, a lost node) is
a system failure: Ray runs the task again elsewhere, up to ``max_retries`` times, and
the new attempt resumes from the last segment the work folder holds. An error in a
job (bad input, a model error) is not retried: it is reported and the other jobs go
on. Outputs and work folders must be on storage every worker sees.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from wanimate.batch.jobs import BatchJob
from wanimate.batch.tasks import JobStatus, generate_job, job_device, preprocess_job
from wanimate.errors import WanimateError

POLL_S = 0.5


def need_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise WanimateError("--ray needs the cluster extra: pip install 'wanimate[cluster]'") from None
    return ray


def connect(address: str) -> Any:
    """Join the cluster at ``address`` (``auto``: the one ``ray start`` runs here or ``RAY_ADDRESS`` names)."""
    ray = need_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise WanimateError(f"cannot reach a Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    return ray


@functools.cache
def _remote() -> tuple[Any, Any, Any]:
    ray = need_ray()

    @ray.remote(num_cpus=0)
    class ProgressBoard:
        """Where tasks report progress; the driver reads a snapshot every half second."""

        def __init__(self) -> None:
            self.status: dict[str, JobStatus] = {}

        def update(self, name: str, fields: dict[str, Any]) -> None:
            self.status.setdefault(name, JobStatus(name)).apply(dict(fields))

        def snapshot(self) -> dict[str, JobStatus]:
            return self.status

    def report_to(board: Any) -> Callable[[str, dict[str, Any]], None]:
        return lambda name, fields: board.update.remote(name, fields)

    @ray.remote
    def preprocess(job: BatchJob, board: Any) -> str:
        return preprocess_job(job, report_to(board))

    @ray.remote
    def generate(job: BatchJob, materials: str, board: Any, gpus: int, device: str) -> str:
        return generate_job(job, report_to(board), gpus=gpus, device=device)

    return ProgressBoard, preprocess, generate


def _error_text(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, WanimateError):
        return str(cause)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


def run_on_ray(
    jobs: list[BatchJob],
    address: str,
    *,
    gpus_per_job: int,
    cpus_per_preprocess: float = 1.0,
    max_retries: int = 3,
    on_update: Callable[[dict[str, JobStatus]], None] | None = None,
) -> dict[str, JobStatus]:
    """Run every job on the cluster and wait; returns each job's final status."""
    ray = connect(address)
    if gpus_per_job and ray.cluster_resources().get("GPU", 0) < gpus_per_job:
        raise WanimateError(
            f"the Ray cluster has {int(ray.cluster_resources().get('GPU', 0))} GPUs but jobs ask for {gpus_per_job}; "
            "pass --gpus-per-job 0 to run on CPUs"
        )
    board_cls, preprocess, generate = _remote()
    board = board_cls.remote()
    pending: dict[Any, str] = {}
    for job in jobs:
        gpus = job.gpus if job.gpus is not None else gpus_per_job
        materials = preprocess.options(num_cpus=cpus_per_preprocess, max_retries=max_retries).remote(job, board)
        resources = {"num_gpus": gpus, "num_cpus": 1} if gpus else {"num_gpus": 0, "num_cpus": 1}
        task = generate.options(max_retries=max_retries, **resources).remote(
            job, materials, board, gpus, job_device(gpus)
        )
        pending[task] = job.name
    final: dict[str, JobStatus] = {}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_S, fetch_local=False)
        snapshot: dict[str, JobStatus] = ray.get(board.snapshot.remote())
        for task in ready:
            name = pending.pop(task)
            status = snapshot.get(name, JobStatus(name))
            try:
                status.output = ray.get(task)
                status.state = "done"
            except Exception as exc:  # a job's own error, or a worker that died more than max_retries times
                status.state, status.error = "failed", _error_text(exc)
            status.finished = status.finished or time.time()
            final[name] = status
        if on_update is not None:
            on_update({**snapshot, **final})
    ray.kill(board)
    return final
