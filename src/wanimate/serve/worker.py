"""The worker process: takes queued jobs from SQLite and runs them.

It is a separate process so that a crash in the model code (or an OOM kill) cannot take
the API down, and so that ``SIGKILL`` is a real test of recovery. On start it puts jobs
a dead worker left half-done back in the queue; each job's work folder lives in its
workspace, so ``run`` picks up the cached preprocessing and the finished segments.

Jobs run in threads inside this process: one per GPU slot for anything that may load
Wan, up to ``cpu_jobs`` for the preview renderer. Each GPU slot keeps its model session
warm: the next job that asks for the same weights, dtype and device reuses the loaded
model (about two minutes of loading for the 14B weights), with its options applied by
the session; a job for other weights replaces it. An exclusive lock on the data folder
keeps a second worker from running the same jobs twice.
"""

from __future__ import annotations

import fcntl
import importlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from wanimate.errors import WanimateError
from wanimate.options import build
from wanimate.serve.config import ServeConfig
from wanimate.serve.options import JobOptions
from wanimate.serve.progress import JobCancelled, ProgressRecorder, WorkerStopping
from wanimate.serve.store import Job, JobStore
from wanimate.workdir import remove_stale_staging

log = logging.getLogger("wanimate.serve.worker")
SWEEP_EVERY_S = 30.0


def load_runner(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def workspace(config: ServeConfig, job_id: str) -> Path:
    return config.jobs_dir / job_id


def find_input(folder: Path, stem: str) -> Path:
    matches = sorted(folder.glob(f"{stem}.*"))
    if not matches:
        raise WanimateError(f"the job's {stem} file is missing from its workspace")
    return matches[0]


def remove_staging(folder: Path) -> None:
    """Delete what a killed attempt was half-way writing in a job's folder; finished work stays.

    The result and comparison videos are written through hidden ``.*.partial`` files, uploads
    through ``*.upload`` ones; in the work folder, the materials being built and a segment being
    saved.
    """
    for leftover in [*folder.glob(".*.partial"), *(folder / "inputs").glob("*.upload")]:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    remove_stale_staging(folder / "work")


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class Worker:
    def __init__(self, config: ServeConfig, runner: Callable[..., Any] | None = None) -> None:
        self.config = config
        self.store = JobStore(config.database)
        self.stopping = threading.Event()
        self.gpus = gpu_count()
        slots = config.gpu_jobs if config.gpu_jobs is not None else max(1, self.gpus)
        if runner is None and config.ray_address is not None:
            from wanimate.serve.ray_runner import RayRunner

            runner = RayRunner(config.ray_address, config.gpus_per_job)
            self.gpus = 0  # devices are the cluster's to assign
            slots = config.gpu_jobs if config.gpu_jobs is not None else runner.slots()
        self.runner = runner or load_runner(config.runner)
        self.gpu_slots: list[threading.Thread | None] = [None] * slots
        self.cpu_slots: list[threading.Thread | None] = [None] * config.cpu_jobs
        # One warm ModelSession per GPU slot; jobs sent to a Ray cluster load their model there.
        self.sessions: list[Any] = [None] * slots
        self.keeps_sessions = config.ray_address is None
        self._lock_file: TextIO | None = None

    def _take_lock(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.config.data_dir / "worker.lock", "w")  # noqa: SIM115 (held until run_forever returns)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WanimateError(f"another worker is already running jobs from {self.config.data_dir}") from None
        self._lock_file = handle

    def run_forever(self, parent_pid: int | None = None) -> None:
        """Claim and run jobs until :attr:`stopping` is set (or the server that started us is gone)."""
        self._take_lock()
        try:
            requeued = self.store.requeue_running()
            if requeued:
                log.warning("resuming %d job(s) interrupted by a previous worker", len(requeued))
            for job_id in requeued:
                remove_staging(workspace(self.config, job_id))
            last_sweep = 0.0
            while not self.stopping.is_set():
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.warning("the server process is gone; stopping")
                    break
                self._fill(self.gpu_slots, "gpu")
                self._fill(self.cpu_slots, "cpu")
                if time.monotonic() - last_sweep > min(SWEEP_EVERY_S, self.config.retention_s / 2):
                    last_sweep = time.monotonic()
                    self.sweep()
                self.stopping.wait(self.config.poll_s)
        finally:
            self.stopping.set()
            for thread in [*self.gpu_slots, *self.cpu_slots]:
                if thread is not None:
                    thread.join(timeout=30)
            if self._lock_file is not None:
                self._lock_file.close()  # releases the lock
                self._lock_file = None

    def _fill(self, slots: list[threading.Thread | None], lane: str) -> None:
        for index, thread in enumerate(slots):
            if thread is not None and thread.is_alive():
                continue
            job = self.store.claim(lane)
            if job is None:
                slots[index] = None
                return
            device = f"cuda:{index}" if lane == "gpu" and self.gpus > index else None
            slot = index if lane == "gpu" else None
            slots[index] = threading.Thread(target=self.run_job, args=(job, device, slot), name=f"job-{job.id}")
            slots[index].start()

    def session_for(self, slot: int, options: dict[str, Any]) -> Any:
        """The slot's warm session when it holds what this job asks for; otherwise a new (lazy) one."""
        from wanimate.generate.runtime import session_for, session_key
        from wanimate.run.settings import RunSettings

        settings = build(RunSettings, options).generate
        current = self.sessions[slot]
        if current is not None and current.key == session_key(settings):
            return current
        if current is not None:
            current.close()  # free the old weights before the new ones load
        self.sessions[slot] = session_for(settings)
        return self.sessions[slot]

    def run_job(self, job: Job, device: str | None, slot: int | None = None) -> None:
        """Run one job; a GPU ``slot`` lends the job its warm model session."""
        folder = workspace(self.config, job.id)
        if job.cancel:
            self._cancelled(job.id, folder)
            return
        if job.attempts > self.config.max_attempts:
            self.store.finish(
                job.id, "failed", error=f"the worker stopped {job.attempts - 1} times while running this job"
            )
            return
        recorder = ProgressRecorder(self.store, job.id, job.attempts, self.stopping)
        try:
            options = JobOptions.model_validate(job.options)
            kwargs = options.run_kwargs(device)
            inputs = folder / "inputs"
            cast = {"cast": {p: find_input(inputs, f"cast_{p}") for p in options.cast}} if options.cast else {}
            # A warm session serves one character's jobs; a cast job loads its own model(s).
            if slot is not None and self.keeps_sessions and not cast:
                kwargs["session"] = self.session_for(slot, kwargs)
            result = self.runner(
                None if cast else find_input(inputs, "image"),
                find_input(inputs, "video"),
                folder / "result.mp4",
                compare=None if cast else folder / "compare.mp4",
                work_dir=folder / "work",
                overwrite=True,  # the job's own folder: a resumed attempt replaces what a killed one left
                **cast,
                progress=recorder,
                progress_bars=False,
                **kwargs,
            )
        except JobCancelled:
            self._cancelled(job.id, folder)
        except WorkerStopping:
            self.store.requeue(job.id)
        except WanimateError as exc:
            self.store.finish(job.id, "failed", error=str(exc))
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self.store.finish(job.id, "failed", error=f"internal error ({type(exc).__name__}): {exc}")
        else:
            compare = getattr(result, "compare", None)
            self.store.finish(
                job.id,
                "done",
                result={
                    "backend": result.backend,
                    "output": str(result.output),
                    "compare": str(compare) if compare else None,
                    "materials": str(result.materials),
                },
            )

    def _cancelled(self, job_id: str, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        self.store.finish(job_id, "cancelled")

    def sweep(self) -> None:
        """Forget finished jobs older than the retention time, files and all."""
        for job_id in self.store.expired(time.time() - self.config.retention_s):
            shutil.rmtree(workspace(self.config, job_id), ignore_errors=True)
            self.store.delete(job_id)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    config = ServeConfig.from_json(Path(args[0]).read_text())
    parent = int(args[1]) if len(args) > 1 else None
    logging.basicConfig(level=logging.INFO, format="wanimate worker: %(message)s")
    worker = Worker(config)
    signal.signal(signal.SIGTERM, lambda *_: worker.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stopping.set())
    try:
        worker.run_forever(parent_pid=parent)
    except WanimateError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    # Skip interpreter teardown: native libraries' threads can hold it for seconds, and all state is in SQLite.
    os._exit(code)
