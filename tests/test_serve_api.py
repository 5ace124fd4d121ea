"""The server's API without a worker: validation, security, queue bookkeeping (fast, no jobs run)."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from wanimate.bench.serve import short_clip
from wanimate.errors import WanimateError
from wanimate.serve.config import ServeConfig
from wanimate.serve.server import BackgroundServer
from wanimate.serve.store import JobStore
from wanimate.serve.worker import Worker

TOKEN = "t0ken-for-tests-0123456789"
PREVIEW = json.dumps({"backend": "preview", "area": [64, 64]})


@pytest.fixture(scope="module")
def clip(carphone_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_clip(carphone_video, tmp_path_factory.mktemp("clip") / "drive.mp4", 6)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("serve-api")
    (root / "inputs").mkdir()
    config = ServeConfig(
        data_dir=root / "data",
        input_root=root / "inputs",
        max_image_bytes=2_000_000,
        max_video_bytes=300_000,
        submit_burst=100,
    )
    with BackgroundServer(config, worker=False) as srv:
        yield srv


def submit(url: str, files: dict, options: str = PREVIEW, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{url}/jobs", files=files, data={"options": options}, headers=headers, timeout=60)


def media(image: Path, video: Path) -> dict:
    return {"image": ("a.png", image.read_bytes()), "video": ("d.mp4", video.read_bytes())}


def test_submit_queues_with_unguessable_id_and_lists_it(server, astronaut_image, clip):
    response = submit(server.url, media(astronaut_image, clip))
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "queued" and response.headers["location"] == f"/jobs/{job['id']}"
    assert len(job["id"]) >= 24
    workspace = server.app.state.config.jobs_dir / job["id"] / "inputs"
    assert sorted(p.name for p in workspace.iterdir()) == ["image.png", "video.mp4"]
    assert httpx.get(f"{server.url}/jobs/{job['id']}").json()["options"]["backend"] == "preview"
    page = httpx.get(f"{server.url}/jobs", params={"limit": 1}).json()
    assert page["jobs"][0]["id"] == job["id"] and page["total"] >= 1
    assert httpx.get(f"{server.url}/jobs/{job['id']}/result").status_code == 409


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("empty image", 400, "character image is empty"),
        ("text as video", 415, "not a video"),
        ("image as video", 415, "not a video"),
        ("text as image", 415, "not an image"),
        ("truncated video", 422, "truncated"),
        ("truncated image", 422, "truncated"),
        ("video too large", 413, "larger than"),
        ("missing video", 400, "driving video"),
        ("bad json", 400, "not valid JSON"),
        ("unknown option", 422, "bad options"),
        ("weights path", 400, "not offered"),
    ],
)
def test_bad_uploads_get_a_clear_4xx(server, astronaut_image, clip, carphone_video, name, status, words):
    image, video = astronaut_image.read_bytes(), clip.read_bytes()
    options = PREVIEW
    files = {"image": ("a.png", image), "video": ("d.mp4", video)}
    if name == "empty image":
        files["image"] = ("a.png", b"")
    elif name == "text as video":
        files["video"] = ("d.mp4", b"hello, this is not a video\n" * 100)
    elif name == "image as video":
        small = io.BytesIO()
        Image.new("RGB", (32, 32), "red").save(small, format="PNG")
        files["video"] = ("d.mp4", small.getvalue())
    elif name == "text as image":
        files["image"] = ("a.png", b"GIF? no, plain text" * 10)
    elif name == "truncated video":
        files["video"] = ("d.mp4", video[: len(video) * 2 // 3])
    elif name == "truncated image":
        files["image"] = ("a.png", image[: len(image) // 2])
    elif name == "video too large":
        files["video"] = ("d.mp4", carphone_video.read_bytes())  # 300+ KB, over this server's limit
    elif name == "missing video":
        del files["video"]
    elif name == "bad json":
        options = "{mode: animate"
    elif name == "unknown option":
        options = json.dumps({"backend": "preview", "models_dir": "/etc"})
    elif name == "weights path":
        options = json.dumps({"backend": "wan", "weights": "/etc/passwd"})
    before = set(server.app.state.config.jobs_dir.iterdir()) if server.app.state.config.jobs_dir.exists() else set()
    response = submit(server.url, files, options)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    after = set(server.app.state.config.jobs_dir.iterdir()) if server.app.state.config.jobs_dir.exists() else set()
    assert after == before  # nothing left behind


def test_body_over_the_total_limit_is_cut_off_with_413(server):
    config = server.app.state.config
    from wanimate.cast.spec import MAX_CHARACTERS

    huge = b"\0" * (MAX_CHARACTERS * config.max_image_bytes + config.max_video_bytes + 200_000)  # a full cast
    response = httpx.post(f"{server.url}/jobs", content=huge, headers={"content-type": "application/octet-stream"})
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_server_side_paths_stay_inside_the_input_root(server, astronaut_image, clip, tmp_path):
    root: Path = server.app.state.config.input_root
    (root / "me.png").write_bytes(astronaut_image.read_bytes())
    (root / "clips").mkdir(exist_ok=True)
    (root / "clips" / "d.mp4").write_bytes(clip.read_bytes())
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(clip.read_bytes())
    (root / "escape.mp4").symlink_to(secret)

    def by_path(image: str, video: str) -> httpx.Response:
        options = json.dumps({"backend": "preview", "image_path": image, "video_path": video})
        return httpx.post(f"{server.url}/jobs", data={"options": options}, timeout=60)

    ok = by_path("me.png", "clips/d.mp4")
    assert ok.status_code == 201, ok.text
    assert by_path("me.png", "../" * 6 + str(secret)).status_code == 403
    assert by_path("me.png", str(secret)).status_code == 403
    escaped = by_path("me.png", "escape.mp4")
    assert escaped.status_code == 403 and "outside the input root" in escaped.json()["detail"]
    assert by_path("me.png", "clips/missing.mp4").status_code == 404


def test_openapi_documents_every_route(server):
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    for path in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/events", "/jobs/{job_id}/result", "/health"):
        assert path in paths
    assert set(paths["/jobs/{job_id}"]) == {"get", "delete"}
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_people_sheet_waits_for_preprocessing(server, astronaut_image, clip):
    job_id = submit(server.url, media(astronaut_image, clip)).json()["id"]
    for path in (f"/jobs/{job_id}/people", f"/jobs/{job_id}/people.json"):
        response = httpx.get(f"{server.url}{path}", timeout=30)
        assert response.status_code == 409 and "not ready: the job is queued" in response.json()["detail"]
    assert httpx.get(f"{server.url}/jobs/nope/people", timeout=30).status_code == 404


def test_cancel_queued_job_removes_its_files_and_delete_forgets_it(server, astronaut_image, clip):
    job = submit(server.url, media(astronaut_image, clip)).json()
    folder = server.app.state.config.jobs_dir / job["id"]
    assert folder.is_dir()
    first = httpx.delete(f"{server.url}/jobs/{job['id']}").json()
    assert first == {"id": job["id"], "deleted": False, "cancelling": False}
    assert not folder.exists()
    assert httpx.get(f"{server.url}/jobs/{job['id']}").json()["state"] == "cancelled"
    with httpx.stream("GET", f"{server.url}/jobs/{job['id']}/events", timeout=10) as stream:
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    assert json.loads(lines[-1][6:])["state"] == "cancelled"
    assert httpx.delete(f"{server.url}/jobs/{job['id']}").json()["deleted"] is True
    assert httpx.get(f"{server.url}/jobs/{job['id']}").status_code == 404


def test_paging_is_newest_first_and_complete(server, astronaut_image, clip):
    for _ in range(3):
        assert submit(server.url, media(astronaut_image, clip)).status_code == 201
    total = httpx.get(f"{server.url}/jobs").json()["total"]
    seen, offset = [], 0
    while offset is not None and len(seen) < 200:
        page = httpx.get(f"{server.url}/jobs", params={"limit": 2, "offset": offset}).json()
        seen += page["jobs"]
        offset = page["next_offset"]
    assert len(seen) == total == len({j["id"] for j in seen})
    created = [j["created"] for j in seen]
    assert created == sorted(created, reverse=True)
    assert httpx.get(f"{server.url}/jobs", params={"state": "bogus"}).status_code == 400


def test_refuses_to_start_off_loopback_without_a_token(monkeypatch, tmp_path):
    monkeypatch.delenv("WANIMATE_TOKEN", raising=False)
    with pytest.raises(WanimateError, match="without a token"):
        ServeConfig(host="0.0.0.0", data_dir=tmp_path).validate()
    with pytest.raises(WanimateError, match="too short"):
        ServeConfig(host="0.0.0.0", data_dir=tmp_path, token="short").validate()
    monkeypatch.setenv("WANIMATE_TOKEN", TOKEN)
    ServeConfig(host="0.0.0.0", data_dir=tmp_path).validate()
    ServeConfig(host="::1", data_dir=tmp_path, token=None).validate()


def test_cli_refuses_to_start_off_loopback_without_a_token(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "WANIMATE_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "wanimate", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2
    assert "WANIMATE_TOKEN" in done.stderr


def test_token_is_required_when_configured(tmp_path, astronaut_image, clip):
    config = ServeConfig(data_dir=tmp_path / "data", token=TOKEN)
    with BackgroundServer(config, worker=False) as srv:
        assert httpx.get(f"{srv.url}/health").status_code == 200
        assert httpx.get(f"{srv.url}/").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong-token-000000000"}, {"Authorization": TOKEN}):
            response = httpx.get(f"{srv.url}/jobs", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
            assert submit(srv.url, media(astronaut_image, clip), headers=headers).status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{srv.url}/jobs", headers=good).status_code == 200
        assert submit(srv.url, media(astronaut_image, clip), headers=good).status_code == 201


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    config = ServeConfig(data_dir=tmp_path / "data", rate_per_s=1.0, rate_burst=5)
    with BackgroundServer(config, worker=False) as srv, httpx.Client(base_url=srv.url) as http:
        codes = [http.get("/health").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
        limited = http.get("/jobs")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_finished_jobs_expire_after_the_retention_time(tmp_path):
    config = ServeConfig(data_dir=tmp_path / "data", retention_s=0.5, runner="builtins:print")
    store = JobStore(config.database)
    for job_id, state in (("old", "done"), ("fresh", "queued")):
        (config.jobs_dir / job_id).mkdir(parents=True)
        store.add(job_id, "cpu", {}, "me")
        if state == "done":
            store.finish(job_id, "done")
    time.sleep(0.6)
    Worker(config).sweep()
    assert store.get("old") is None and not (config.jobs_dir / "old").exists()
    assert store.get("fresh") is not None and (config.jobs_dir / "fresh").exists()


def test_concurrent_claims_never_hand_out_a_job_twice(tmp_path):
    store = JobStore(tmp_path / "q.sqlite3")
    for index in range(40):
        store.add(f"job{index:02d}", "cpu", {}, "me")
    claimed: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        while (job := store.claim("cpu")) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == [f"job{i:02d}" for i in range(40)]
