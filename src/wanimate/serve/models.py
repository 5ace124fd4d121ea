"""The JSON the API returns, as pydantic models so /docs documents it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from wanimate.serve.store import Job


class Progress(BaseModel):
    stage: str | None = None
    fraction: float | None = None
    overall: float = 0.0
    segment: int = 0
    num_segments: int = 0
    step: int = 0
    num_steps: int = 0
    message: str = ""
    eta_s: float | None = None
    attempt: int = 0


class JobView(BaseModel):
    id: str
    state: str
    created: float
    started: float | None
    finished: float | None
    options: dict[str, Any]
    progress: Progress
    error: str | None
    attempts: int
    backend: str | None
    links: dict[str, str]


class JobPage(BaseModel):
    jobs: list[JobView]
    total: int
    next_offset: int | None


def job_view(job: Job) -> JobView:
    base = f"/jobs/{job.id}"
    links = {"self": base, "events": f"{base}/events", "materials": f"{base}/materials", "people": f"{base}/people"}
    if job.state == "done":
        links |= {"result": f"{base}/result", "preview": f"{base}/preview"}
    progress = Progress(**job.progress) if job.progress else Progress()
    if job.state == "done":
        progress.overall = 1.0
        progress.eta_s = 0.0
    return JobView(
        id=job.id,
        state=job.state,
        created=job.created,
        started=job.started,
        finished=job.finished,
        options=job.options,
        progress=progress,
        error=job.error,
        attempts=job.attempts,
        backend=(job.result or {}).get("backend"),
        links=links,
    )
