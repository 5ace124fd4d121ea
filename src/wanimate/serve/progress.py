"""Turns the runner's progress events into what clients see: stage, i/n, overall fraction, ETA.

It is also the worker's only hook into a running job, so it doubles as the place where
cancellation and shutdown are noticed: raising here unwinds ``run`` at the next event.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from wanimate.serve.store import JobStore

# Where each stage sits on the job's overall 0..1 bar.
STAGE_SPANS = {"preprocess": (0.0, 0.3), "generate": (0.3, 0.95), "preview": (0.3, 0.95), "compare": (0.95, 1.0)}
WRITE_EVERY_S = 0.25


class JobCancelled(Exception):
    """The client deleted the job while it ran."""


class WorkerStopping(Exception):
    """The worker is shutting down; the job goes back to the queue and resumes later."""


def stage_fraction(event: Any) -> float | None:
    """How far the current stage is: the runner's own figure, else from segments and steps."""
    if event.fraction is not None:
        return float(event.fraction)
    if event.num_segments:
        within = event.step / event.num_steps if event.num_steps else (event.fraction or 0.0)
        return min(1.0, (event.segment + within) / event.num_segments)
    return event.fraction


class ProgressRecorder:
    """A ``progress`` callback for one attempt at one job."""

    def __init__(self, store: JobStore, job_id: str, attempt: int, stopping: threading.Event) -> None:
        self.store = store
        self.job_id = job_id
        self.attempt = attempt
        self.stopping = stopping
        self._stage_started = time.monotonic()
        self._last_key: tuple[str, int] | None = None
        self._last_stage: str | None = None
        self._last_write = 0.0
        self._peak = 0.0
        self._base: float | None = None

    def __call__(self, event: Any) -> None:
        now = time.monotonic()
        if event.stage != self._last_stage:
            self._last_stage = event.stage
            self._stage_started = now
            self._peak = 0.0
            self._base = None
        fraction = stage_fraction(event)
        if fraction is not None:
            # Per-segment bookkeeping events can report less than the step before; never go backwards.
            fraction = self._peak = max(fraction, self._peak)
        low, high = STAGE_SPANS.get(event.stage, (1.0, 1.0))
        eta = None
        if fraction is not None:
            # A resumed stage starts part-way: the rate is measured from where this attempt began.
            self._base = fraction if self._base is None else self._base
            if fraction - self._base > 0.02:
                eta = round((now - self._stage_started) * (1.0 - fraction) / (fraction - self._base), 1)
        progress = {
            "stage": event.stage,
            "fraction": fraction,
            "overall": round(low + (high - low) * (fraction or 0.0), 4),
            "segment": event.segment,
            "num_segments": event.num_segments,
            "step": event.step,
            "num_steps": event.num_steps,
            "message": event.message,
            "eta_s": eta,
            "attempt": self.attempt,
        }
        key = (event.stage, event.segment)
        changed = key != self._last_key
        if changed or now - self._last_write >= WRITE_EVERY_S:
            self._last_key = key
            self._last_write = now
            state = "preprocessing" if event.stage == "preprocess" else "generating"
            if self.store.update_progress(self.job_id, state, progress, event=changed, attempt=self.attempt):
                raise JobCancelled
        if self.stopping.is_set():
            raise WorkerStopping
