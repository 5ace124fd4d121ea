"""``run_batch``: the jobs of a batch, here or on a Ray cluster, with one status per job at the end."""

from __future__ import annotations

import time
from collections.abc import Callable

from wanimate.batch.jobs import BatchJob
from wanimate.batch.tasks import JobStatus, job_device, run_locally


def run_batch(
    jobs: list[BatchJob],
    *,
    ray: str | None = None,
    gpus_per_job: int = 1,
    max_retries: int = 3,
    on_update: Callable[[dict[str, JobStatus]], None] | None = None,
) -> dict[str, JobStatus]:
    """Run ``jobs`` (on the Ray cluster at ``ray``, else one by one here); jobs whose output exists are skipped.

    A finished output is never overwritten: running the same batch again after an
    interruption runs only what is missing (and each unfinished job resumes from its
    work folder).
    """
    statuses = {job.name: JobStatus(job.name) for job in jobs}
    todo = []
    for job in jobs:
        if job.output.exists():
            statuses[job.name].apply({"state": "done", "output": str(job.output), "error": None})
            statuses[job.name].extra["skipped"] = True
        else:
            todo.append(job)
    if on_update is not None:
        on_update(statuses)
    if todo and ray is not None:
        from wanimate.batch.cluster import run_on_ray

        def merged(update: dict[str, JobStatus]) -> None:
            statuses.update(update)
            if on_update is not None:
                on_update(statuses)

        statuses.update(run_on_ray(todo, ray, gpus_per_job=gpus_per_job, max_retries=max_retries, on_update=merged))
    elif todo:
        device = job_device(gpus_per_job)

        def report(name: str, fields: dict) -> None:
            statuses[name].apply(dict(fields))
            if on_update is not None:
                on_update(statuses)

        run_locally(todo, report, gpus=gpus_per_job, device=device)
    for status in statuses.values():
        status.finished = status.finished or time.time()
    return statuses
