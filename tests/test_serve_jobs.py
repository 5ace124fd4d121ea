"""Jobs through the real worker process and the real ``wanimate.run``: preview and tiny-Wan end to end,
a SIGKILLed worker resuming a multi-segment job, and 20 concurrent submissions surviving a restart."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image

from wanimate.bench.serve import short_clip
from wanimate.serve.config import ServeConfig
from wanimate.serve.server import BackgroundServer

CLIP_FRAMES = 17  # 4 segments of 5 frames with 1 frame of overlap
WAN = {
    "backend": "wan",
    "weights": "random:tiny",
    "steps": 2,
    "segment_frames": 5,
    "dtype": "fp32",
    "prompt": "w1 w2",
    "preprocess": {"area": [64, 64]},
}
PREVIEW = {"backend": "preview", "preprocess": {"area": [64, 64]}}


@pytest.fixture(scope="module")
def clip(carphone_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_clip(carphone_video, tmp_path_factory.mktemp("clip") / "drive.mp4", CLIP_FRAMES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    config = ServeConfig(data_dir=tmp_path_factory.mktemp("serve-jobs"), cpu_jobs=2)
    with BackgroundServer(config) as srv:
        yield srv


def submit(url: str, image: Path, video: Path, options: dict) -> str:
    files = {"image": ("c.png", image.read_bytes()), "video": ("d.mp4", video.read_bytes())}
    response = httpx.post(f"{url}/jobs", files=files, data={"options": json.dumps(options)}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_for(predicate, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def frames_of(data: bytes, tmp_path: Path) -> tuple[int, int, int]:
    path = tmp_path / f"v{len(data)}.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return len(frames), frames[0].width, frames[0].height


def test_preview_job_end_to_end_with_live_events(server, astronaut_image, clip, tmp_path):
    job_id = submit(server.url, astronaut_image, clip, PREVIEW)
    states = []
    with httpx.stream("GET", f"{server.url}/jobs/{job_id}/events", timeout=httpx.Timeout(10, read=120)) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        for line in events.iter_lines():
            if line.startswith("data: "):
                job = json.loads(line[6:])
                if not states or states[-1] != job["state"]:
                    states.append(job["state"])
            assert len(states) < 50
    assert states[-1] == "done", job["error"]
    assert states.index("preprocessing") < states.index("generating") < states.index("done")
    assert job["backend"] == "preview" and job["progress"]["overall"] == 1.0

    result = httpx.get(f"{server.url}{job['links']['result']}", timeout=30)
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    count, width, height = frames_of(result.content, tmp_path)
    assert count == CLIP_FRAMES and (width, height) == (64, 64)
    side = frames_of(httpx.get(f"{server.url}/jobs/{job_id}/preview", timeout=30).content, tmp_path)
    assert side[1] > width  # driving | skeleton | result
    materials = httpx.get(f"{server.url}/jobs/{job_id}/materials", timeout=30)
    assert materials.status_code == 200 and frames_of(materials.content, tmp_path)[0] == CLIP_FRAMES
    sheet = httpx.get(f"{server.url}{job['links']['people']}", timeout=30)
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(sheet.content))
    assert image.size[0] == 960 and image.size[1] > 960 * 144 // 176  # the frame, scaled, and a thumbnail row
    people = httpx.get(f"{server.url}/jobs/{job_id}/people.json", timeout=30).json()
    assert people["format"] == "wanimate-people" and [p["id"] for p in people["people"]] == [0]
    assert people["chosen"] == 0 and people["people"][0]["first_frame"] == 0
    ranged = httpx.get(f"{server.url}/jobs/{job_id}/result", headers={"Range": "bytes=0-99"}, timeout=30)
    assert ranged.status_code == 206 and len(ranged.content) == 100

    assert httpx.delete(f"{server.url}/jobs/{job_id}").json()["deleted"] is True
    assert not (server.app.state.config.jobs_dir / job_id).exists()


def test_tiny_wan_job_resumes_after_the_worker_is_killed(server, astronaut_image, clip, tmp_path):
    supervisor = server.app.state.supervisor
    job_id = submit(server.url, astronaut_image, clip, WAN)
    segments = server.app.state.config.jobs_dir / job_id / "work" / "segments"
    wait_for(lambda: len(list(segments.glob("*.safetensors"))) >= 1, 240, "the first finished segment", every=0.01)
    victim = supervisor.pid
    os.kill(victim, signal.SIGKILL)
    finished_before = len(list(segments.glob("*.safetensors")))
    assert 1 <= finished_before < 4, "the job finished before it could be killed"
    stamps = {p.name: p.stat().st_mtime_ns for p in segments.glob("*.safetensors")}

    wait_for(lambda: supervisor.pid != victim and supervisor.alive, 60, "the worker to be restarted")
    store = server.app.state.store
    wait_for(
        lambda: len(list(segments.glob("*.safetensors"))) > finished_before or store.get(job_id).terminal,
        240,
        "progress after the restart",
        every=0.01,
    )
    for name, stamp in stamps.items():  # finished segments are kept, not recomputed
        path = segments / name
        assert not path.exists() or path.stat().st_mtime_ns == stamp
    job = wait_for(lambda: (j := store.get(job_id)).terminal and j, 240, "the resumed job to finish")
    assert job.state == "done", job.error
    assert job.attempts == 2

    events = store.events(job_id)
    second = [e for attempt, e in events if attempt == 2]
    assert not [e for e in second if e["stage"] == "preprocess"], "preprocessing was redone"
    generated = [e for e in second if e["stage"] == "generate" and e["message"] in ("segment", "resume")]
    assert generated[0]["message"] == "resume" and generated[0]["segment"] == finished_before
    assert min(e["segment"] for e in generated) == finished_before

    result = httpx.get(f"{server.url}/jobs/{job_id}/result", timeout=30)
    assert frames_of(result.content, tmp_path)[0] == CLIP_FRAMES
    job_dir = server.app.state.config.jobs_dir / job_id
    assert not [p for p in job_dir.rglob("*") if ".partial" in p.name]  # the killed attempt's staging is gone
    view = httpx.get(f"{server.url}/jobs/{job_id}").json()
    assert view["backend"] == "wan" and view["attempts"] == 2


def test_twenty_concurrent_submissions_all_finish_across_a_restart(astronaut_image, carphone_video, tmp_path):
    clip = short_clip(carphone_video, tmp_path / "drive6.mp4", 6)
    config = ServeConfig(data_dir=tmp_path / "data", cpu_jobs=2)

    def one(_: int) -> str:
        return submit(server.url, astronaut_image, clip, PREVIEW)

    # Submitted while no worker runs: the queue alone must hold them, across a server restart.
    with BackgroundServer(config, worker=False) as server, ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(one, range(20)))
    assert len(set(ids)) == 20

    with BackgroundServer(config) as server:
        store = server.app.state.store
        wait_for(lambda: all(store.get(i).terminal for i in ids), 170, "all 20 jobs", every=0.5)
        jobs = [store.get(i) for i in ids]
        assert [j.state for j in jobs] == ["done"] * 20, [j.error for j in jobs if j.error]
        assert all((config.jobs_dir / i / "result.mp4").stat().st_size > 0 for i in ids)
        page = httpx.get(f"{server.url}/jobs", params={"limit": 100}).json()
        assert page["total"] == 20 and {j["id"] for j in page["jobs"]} == set(ids)
