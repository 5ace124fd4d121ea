"""A cast through the server: the job option, one uploaded image per id, and what the worker runs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest

from wanimate.serve.config import ServeConfig
from wanimate.serve.server import BackgroundServer
from wanimate.serve.store import JobStore
from wanimate.serve.worker import Worker

CAST = {"backend": "preview", "cast": [2, 0], "background": "neutral", "area": [192, 128]}


@pytest.fixture(scope="module")
def clip(carphone_video, tmp_path_factory):
    from wanimate.bench.serve import short_clip

    return short_clip(carphone_video, tmp_path_factory.mktemp("clip") / "drive.mp4", 6).read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-cast")
    config = ServeConfig(data_dir=root / "data", max_image_bytes=2_000_000, max_video_bytes=300_000, submit_burst=100)
    with BackgroundServer(config, worker=False) as srv:
        yield srv, config


def _submit(url: str, files: list, options: dict) -> httpx.Response:
    return httpx.post(f"{url}/jobs", files=files, data={"options": json.dumps(options)}, timeout=60)


def test_a_cast_job_stores_one_image_per_id_and_the_worker_runs_the_cast(server, astronaut_image, clip):
    srv, config = server
    image = ("a.png", astronaut_image.read_bytes())
    video = ("d.mp4", clip)
    response = _submit(srv.url, [("cast_image", image), ("cast_image", image), ("video", video)], CAST)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    inputs = config.jobs_dir / job_id / "inputs"
    assert sorted(p.name for p in inputs.iterdir()) == ["cast_0.png", "cast_2.png", "video.mp4"]

    calls = []

    def runner(image, video, output, **kwargs):
        calls.append((image, video, kwargs))
        output.write_bytes(b"mp4")
        return SimpleNamespace(output=output, compare=None, backend="preview", materials=output.parent)

    worker = Worker(config, runner=runner)
    job = JobStore(config.database).claim("cpu")
    worker.run_job(job, None)
    ((image_arg, _, kwargs),) = calls
    assert image_arg is None and kwargs["compare"] is None
    assert kwargs["cast"] == {2: inputs / "cast_2.png", 0: inputs / "cast_0.png"}
    assert kwargs["background"] == "neutral" and tuple(kwargs["area"]) == (192, 128)
    assert "weights" not in kwargs  # an animate-mode cast runs on MultiAnimate's own base by default


@pytest.mark.parametrize(
    ("options", "files", "status", "words"),
    [
        ({"cast": [0, 0]}, 2, 422, "each cast once"),
        ({"cast": list(range(8))}, 8, 422, "1 to 7 characters"),
        ({"cast": [0, 1]}, 1, 400, "lists 2 ids but 1 cast_image files"),
    ],
)
def test_bad_cast_jobs_are_refused(server, astronaut_image, clip, options, files, status, words):
    srv, _ = server
    image = ("a.png", astronaut_image.read_bytes())
    sent = [("cast_image", image)] * files + [("video", ("d.mp4", clip))]
    response = _submit(srv.url, sent, {"backend": "preview", **options})
    assert response.status_code == status and words in response.text, response.text
