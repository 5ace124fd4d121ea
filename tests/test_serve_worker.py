"""The worker's scheduling, cancellation and shutdown rules, with a stand-in runner that only sleeps.

The real ``run`` is exercised end to end in test_serve_jobs.py; here the runner is replaced so
that the timing of overlapping jobs is under the test's control.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from wanimate.run import RunEvent
from wanimate.serve.config import ServeConfig
from wanimate.serve.store import JobStore
from wanimate.serve.worker import Worker


class SleepyRunner:
    """Emits a progress event every 10 ms for ``seconds``; records how many jobs of each backend overlap."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = {"wan": 0, "preview": 0}
        self.peak = {"wan": 0, "preview": 0}
        self.preview_beside_wan = False
        self.lock = threading.Lock()

    def __call__(self, image: Path, video: Path, output: Path, *, backend: str, progress, **kwargs):
        kind = "preview" if backend == "preview" else "wan"
        with self.lock:
            self.running[kind] += 1
            self.peak[kind] = max(self.peak[kind], self.running[kind])
            self.preview_beside_wan |= self.running["wan"] > 0 and self.running["preview"] > 0
        try:
            deadline = time.monotonic() + self.seconds
            step = 0
            while time.monotonic() < deadline:
                step += 1
                progress(RunEvent("generate", fraction=None, segment=0, num_segments=1, step=step, num_steps=1000))
                time.sleep(0.01)
            output.write_bytes(b"mp4")
            return SimpleNamespace(output=output, compare=None, backend=kind, materials=output.parent)
        finally:
            with self.lock:
                self.running[kind] -= 1


def make_job(config: ServeConfig, store: JobStore, job_id: str, backend: str) -> None:
    inputs = config.jobs_dir / job_id / "inputs"
    inputs.mkdir(parents=True)
    (inputs / "image.png").write_bytes(b"x")
    (inputs / "video.mp4").write_bytes(b"x")
    store.add(job_id, "cpu" if backend == "preview" else "gpu", {"backend": backend}, "me")


@pytest.fixture
def setup(tmp_path):
    config = ServeConfig(data_dir=tmp_path / "data", cpu_jobs=2, gpu_jobs=1, poll_s=0.02)
    return config, JobStore(config.database)


def start(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    return thread


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_one_wan_job_per_gpu_and_previews_beside_it(setup):
    config, store = setup
    runner = SleepyRunner(0.4)
    ids = [f"w{i}" for i in range(3)] + [f"p{i}" for i in range(4)]
    for job_id in ids:
        make_job(config, store, job_id, "wan" if job_id[0] == "w" else "preview")
    worker = Worker(config, runner=runner)
    thread = start(worker)
    try:
        wait_for(lambda: all(store.get(i).state == "done" for i in ids))
    finally:
        worker.stopping.set()
        thread.join(timeout=10)
    assert runner.peak == {"wan": 1, "preview": 2}
    assert runner.preview_beside_wan
    assert store.get("w0").result["backend"] == "wan"


def test_cancelling_a_running_job_stops_it_and_removes_its_files(setup):
    config, store = setup
    make_job(config, store, "job", "preview")
    worker = Worker(config, runner=SleepyRunner(30))
    thread = start(worker)
    try:
        wait_for(lambda: store.get("job").state == "generating")
        assert store.cancel("job") == "generating"
        wait_for(lambda: store.get("job").state == "cancelled", timeout=5)
        assert not (config.jobs_dir / "job").exists()
    finally:
        worker.stopping.set()
        thread.join(timeout=10)


def test_a_clean_shutdown_requeues_the_running_job_without_counting_it(setup):
    config, store = setup
    make_job(config, store, "job", "wan")
    worker = Worker(config, runner=SleepyRunner(30))
    thread = start(worker)
    wait_for(lambda: store.get("job").state == "generating")
    worker.stopping.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    job = store.get("job")
    assert job.state == "queued" and job.attempts == 0


def test_a_job_that_keeps_killing_the_worker_is_failed(setup):
    config, store = setup
    make_job(config, store, "job", "preview")
    for _ in range(config.max_attempts):  # each crash leaves it running; the next worker requeues it
        assert store.claim("cpu") is not None
        assert store.requeue_running() == ["job"]
    worker = Worker(config, runner=SleepyRunner(0.1))
    thread = start(worker)
    try:
        job = wait_for(lambda: (j := store.get("job")).terminal and j)
    finally:
        worker.stopping.set()
        thread.join(timeout=10)
    assert job.state == "failed" and "stopped 3 times" in job.error


def test_a_second_worker_on_the_same_data_is_refused(setup):
    from wanimate.errors import WanimateError

    config, _ = setup
    first = Worker(config, runner=SleepyRunner(0))
    thread = start(first)
    try:
        wait_for(lambda: first._lock_file is not None)
        with pytest.raises(WanimateError, match="another worker"):
            Worker(config, runner=SleepyRunner(0)).run_forever()
    finally:
        first.stopping.set()
        thread.join(timeout=10)
    assert first._lock_file is None  # released: a new worker may start
