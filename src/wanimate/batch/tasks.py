"""What a worker does for one job, the same on this machine and on a Ray worker.

Two steps, so a cluster can run them on different resources: ``preprocess_job``
(CPU: pose, face, masks into the job's work folder) and ``generate_job`` (GPU: ``run``
finds those materials cached, then generates, resuming from the work folder's
finished segments). Both hold the job's :class:`WorkLease` while they write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wanimate.batch.jobs import BatchJob
from wanimate.batch.lease import WorkLease
from wanimate.errors import WanimateError

Report = Callable[[str, dict[str, Any]], None]  # (job name, fields that changed)
REPORT_EVERY_S = 0.25


def job_device(gpus: int) -> str:
    """The device a job given ``gpus`` GPUs runs on: the worker's own (``auto``: its GPUs), or its CPUs for 0.

    ``auto`` rather than ``cuda``: the task resolves it where it runs, so a job lands on whatever
    accelerator the worker has, and a cluster whose GPUs are only declared runs it on CPU ranks.
    """
    return "auto" if gpus else "cpu"


@dataclass
class JobStatus:
    """What the progress table shows for one job."""

    name: str
    state: str = "queued"  # queued, preprocessing, generating, done, failed
    segment: int = 0
    num_segments: int = 0
    step: int = 0
    num_steps: int = 0
    attempts: int = 0
    host: str = ""
    pid: int = 0
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    output: str | None = None
    resumed_from: int | None = None  # the first segment an attempt computed when it found finished ones
    extra: dict[str, Any] = field(default_factory=dict)

    def apply(self, fields: dict[str, Any]) -> None:
        if fields.pop("attempt_started", False):
            self.attempts += 1
        for key, value in fields.items():
            setattr(self, key, value)


def _throttled(name: str, report: Report) -> Callable[[Any], None]:
    """A ``run`` progress callback that forwards stage/segment changes at once and steps every 0.25 s."""
    last: dict[str, Any] = {"key": None, "time": 0.0}

    def forward(event: Any) -> None:
        if event.message == "resume":
            report(name, {"resumed_from": event.segment})
        state = "preprocessing" if event.stage == "preprocess" else "generating"
        key = (state, event.segment)
        now = time.monotonic()
        if key == last["key"] and now - last["time"] < REPORT_EVERY_S:
            return
        last.update(key=key, time=now)
        report(
            name,
            {
                "state": state,
                "segment": event.segment,
                "num_segments": event.num_segments,
                "step": event.step,
                "num_steps": event.num_steps,
            },
        )

    return forward


def _started(job: BatchJob, report: Report, state: str) -> None:
    import os
    import socket

    report(
        job.name,
        {"state": state, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
         "attempt_started": state == "generating"},
    )  # fmt: skip


def preprocess_job(job: BatchJob, report: Report, *, wait_s: float = 30.0) -> str:
    """Write (or find) the job's materials; returns their folder."""
    from wanimate.examples import resolve_input
    from wanimate.run.pipeline import prepare_materials
    from wanimate.workdir import WorkDir

    _started(job, report, "preprocessing")
    image, video = resolve_input(job.image), resolve_input(job.video)
    for label, path in (("character image", image), ("driving video", video)):
        if not path.is_file():
            raise WanimateError(f"job {job.name}: {label} not found: {path}")
    options = {"mode": job.mode, **job.preprocess_options()}
    with WorkLease(job.work, job.name, wait_s=wait_s), WorkDir(job.work, explicit=True) as work:
        materials, _ = prepare_materials(image, video, work, options, lambda event: None, False)
    return str(materials.root)


def generate_job(job: BatchJob, report: Report, *, gpus: int, device: str, wait_s: float = 30.0) -> str:
    """Run the job to its output (materials cached by :func:`preprocess_job` are reused); returns the output."""
    from wanimate.run import run

    _started(job, report, "generating")
    with WorkLease(job.work, job.name, wait_s=wait_s):
        result = run(
            job.image,
            job.video,
            job.output,
            mode=job.mode,
            backend=job.backend,
            weights=job.weights,
            work_dir=job.work,
            preprocess_options=job.preprocess_options(),
            settings=job.generate_settings(device),
            progress=_throttled(job.name, report),
            progress_bars=False,
            gpus=max(1, gpus),
        )
    report(job.name, {"state": "done", "finished": time.time(), "output": str(result.output)})
    return str(result.output)


def run_locally(jobs: list[BatchJob], report: Report, *, gpus: int, device: str) -> None:
    """One job after another in this process; a failed job is reported and the next one starts."""
    for job in jobs:
        try:
            preprocess_job(job, report)
            generate_job(job, report, gpus=gpus, device=device)
        except WanimateError as exc:
            report(job.name, {"state": "failed", "finished": time.time(), "error": str(exc)})
        except Exception as exc:
            report(job.name, {"state": "failed", "finished": time.time(), "error": f"{type(exc).__name__}: {exc}"})
