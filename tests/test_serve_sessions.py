"""The worker keeps one warm model session per GPU slot: a second job loads nothing and matches a cold worker.

Real ``wanimate.run`` with ``random:tiny`` on a 6-frame clip; jobs are run with ``Worker.run_job``
directly (the queue and its threads are tested in test_serve_worker.py and test_serve_jobs.py).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_serve_jobs import WAN

from wanimate.bench.serve import short_clip
from wanimate.models import loading
from wanimate.serve.config import ServeConfig
from wanimate.serve.options import JobOptions
from wanimate.serve.worker import Worker
from wanimate.video import iter_frames


@pytest.fixture(scope="module")
def clip(carphone_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_clip(carphone_video, tmp_path_factory.mktemp("clip") / "drive.mp4", 6)


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every model load in this process."""
    seen: list[str] = []
    real = loading.load_model

    def counting(weights, **kwargs):
        seen.append(str(weights))
        return real(weights, **kwargs)

    monkeypatch.setattr(loading, "load_model", counting)
    return seen


def _job(worker: Worker, image: Path, video: Path, options: dict) -> str:
    """Queue one job with its inputs and claim it, as the worker's loop would."""
    job_id = secrets.token_hex(6)
    inputs = worker.config.jobs_dir / job_id / "inputs"
    inputs.mkdir(parents=True)
    shutil.copy(image, inputs / "image.png")
    shutil.copy(video, inputs / "video.mp4")
    opts = JobOptions.model_validate(options)
    worker.store.add(job_id, opts.lane, opts.model_dump(), "test")
    return job_id


def _run(worker: Worker, image: Path, video: Path, options: dict) -> np.ndarray:
    job_id = _job(worker, image, video, options)
    job = worker.store.claim("gpu")
    assert job is not None and job.id == job_id
    worker.run_job(job, None, 0)
    done = worker.store.get(job_id)
    assert done.state == "done", done.error
    return np.stack(list(iter_frames(worker.config.jobs_dir / job_id / "result.mp4")))


def test_a_warm_worker_loads_once_and_matches_a_cold_one(tmp_path, astronaut_image, clip, loads):
    warm = Worker(ServeConfig(data_dir=tmp_path / "warm"))
    first = _run(warm, astronaut_image, clip, {**WAN, "cache": "fbc", "shift": 3.0})
    second = _run(warm, astronaut_image, clip, {**WAN, "seed": 7})
    assert loads == ["random:tiny"]  # the second job reused the first job's model
    assert warm.sessions[0].loads == 1

    cold = Worker(ServeConfig(data_dir=tmp_path / "cold"))
    alone = _run(cold, astronaut_image, clip, {**WAN, "seed": 7})
    assert np.array_equal(second, alone)  # the first job's cache and shift left nothing behind
    assert not np.array_equal(first, second)


def test_a_job_with_offload_runs_and_other_weights_replace_the_session(tmp_path, astronaut_image, clip, loads):
    worker = Worker(ServeConfig(data_dir=tmp_path / "data"))
    _run(worker, astronaut_image, clip, WAN)
    _run(worker, astronaut_image, clip, {**WAN, "offload": "group"})  # a placement change: loaded again
    assert worker.sessions[0].loads == 2
    before = worker.sessions[0]
    _run(worker, astronaut_image, clip, {**WAN, "dtype": "bf16"})
    assert worker.sessions[0] is not before and before.model is None  # the old weights were let go
    assert loads == ["random:tiny"] * 3
