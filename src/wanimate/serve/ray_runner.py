"""The server's queue on a Ray cluster: each job runs as a Ray task instead of in the worker's own threads.

The worker process still claims jobs from SQLite, records progress, honours
cancellation and is restarted by the supervisor: only the work itself moves. The
task reports ``run``'s progress events to a small actor that the worker drains into
the job's :class:`ProgressRecorder`, so the API's progress, SSE events and cancel
behave as with the local worker. A task whose owner (this worker) dies is stopped by
Ray; the requeued job's new task waits for the work folder's lease, then resumes
from the finished segments.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from wanimate.batch.lease import WorkLease
from wanimate.batch.tasks import job_device
from wanimate.serve.progress import JobCancelled, WorkerStopping

POLL_S = 0.2
MAX_RETRIES = 3  # a Ray worker that dies mid-job: the task runs again elsewhere and resumes
LEASE_WAIT_S = 120.0  # a requeued job waits this long for an orphaned attempt to be stopped


@functools.cache
def _remote() -> tuple[Any, Any]:
    import ray

    @ray.remote(num_cpus=0)
    class EventBox:
        def __init__(self) -> None:
            self.events: list[Any] = []

        def put(self, event: Any) -> None:
            self.events.append(event)

        def take(self) -> list[Any]:
            events, self.events = self.events, []
            return events

    @ray.remote
    def run_job(image: Path, video: Path, output: Path, box: Any, kwargs: dict[str, Any]) -> Any:
        from wanimate.run import run

        work = Path(kwargs["work_dir"])
        with WorkLease(work, work.parent.name, wait_s=LEASE_WAIT_S):
            return run(image, video, output, progress=lambda event: box.put.remote(event), **kwargs)

    return EventBox, run_job


class RayRunner:
    """A drop-in for ``wanimate.run.run`` in the serve worker that runs the job on the cluster at ``address``."""

    def __init__(self, address: str, gpus_per_job: int) -> None:
        from wanimate.batch.cluster import connect

        self.ray = connect(address)
        self.gpus_per_job = gpus_per_job

    def slots(self) -> int:
        """Jobs the cluster can run at once: its GPUs per job's GPUs (CPUs when it has none)."""
        resources = self.ray.cluster_resources()
        if self.gpus_per_job:
            return max(1, int(resources.get("GPU", 0)) // self.gpus_per_job)
        return max(1, int(resources.get("CPU", 1)))

    def __call__(self, image: Path, video: Path, output: Path, *, progress: Any, **kwargs: Any) -> Any:
        box_cls, run_job = _remote()
        box = box_cls.remote()
        settings = kwargs.get("settings")
        if settings is not None:
            kwargs["settings"] = dataclasses.replace(settings, device=job_device(self.gpus_per_job))
        kwargs["progress_bars"] = False
        kwargs["gpus"] = max(1, self.gpus_per_job)  # several GPUs per job: that job is sequence parallel
        resources = {"num_gpus": self.gpus_per_job, "num_cpus": 1}
        task = run_job.options(max_retries=MAX_RETRIES, **resources).remote(image, video, output, box, kwargs)
        try:
            while True:
                ready, _ = self.ray.wait([task], timeout=POLL_S)
                for event in self.ray.get(box.take.remote()):
                    progress(event)
                if ready:
                    return self._result(task)
        except (JobCancelled, WorkerStopping):
            self.ray.cancel(task, force=True)
            raise
        finally:
            self.ray.kill(box)

    def _result(self, task: Any) -> Any:
        try:
            return self.ray.get(task)
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.cause if exc.cause is not None else exc
            raise cause from None
