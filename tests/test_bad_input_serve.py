"""Bad input, part 6: jobs the server must refuse at submission, before anything is queued.

A refused job leaves no workspace and no queue entry; the error is one line in ``detail``. A job the
chosen model cannot render (random:tiny at the UI's default 720p) is refused now, not after minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_bad_input_media import png_header

from wanimate.serve.app import create_app
from wanimate.serve.config import ServeConfig

TINY = {"backend": "wan", "weights": "random:tiny", "segment_frames": 5}

# id -> (options, image to send: "good" or "bomb", expected status, words of the detail)
CASES = {
    "tiny-at-the-default-720p": (TINY, "good", 422, ("512x512",)),
    "tiny-at-480p": ({**TINY, "preprocess": {"area": [832, 480]}}, "good", 422, ("512x512",)),
    "tiny-segments-too-long": (
        {**TINY, "segment_frames": 125, "preprocess": {"area": [128, 128]}},
        "good",
        422,
        ("121 frames",),
    ),
    "weights-not-offered": ({"backend": "wan", "weights": "/etc/passwd"}, "good", 400, ("not offered",)),
    "segment-frames-not-4n+1": ({"segment_frames": 10}, "good", 422, ("4n+1",)),
    "unknown-option": ({"lipsync": True}, "good", 422, ("lipsync",)),
    "image-bomb": ({"backend": "preview"}, "bomb", 413, ("9000x9000", "megapixels")),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    config = ServeConfig(data_dir=tmp_path_factory.mktemp("serve-bad"), submit_burst=100)
    with TestClient(create_app(config, worker=False)) as test_client:
        yield test_client, config


def _send(client: TestClient, image: bytes, video: bytes, options: dict) -> tuple[int, dict]:
    files = {"image": ("c.png", image), "video": ("d.mp4", video)}
    response = client.post("/jobs", files=files, data={"options": json.dumps(options)})
    return response.status_code, response.json()


@pytest.mark.parametrize("name", list(CASES))
def test_refused_at_submission(name: str, client, bad_input_library, tmp_path: Path) -> None:
    test_client, config = client
    options, image_kind, status, words = CASES[name]
    image = bad_input_library["image"] if image_kind == "good" else png_header(tmp_path / "bomb.png", 9000, 9000)
    before = sorted(config.jobs_dir.iterdir()) if config.jobs_dir.is_dir() else []
    code, body = _send(test_client, image.read_bytes(), bad_input_library["video"].read_bytes(), options)
    assert code == status, body
    assert "\n" not in body["detail"] and all(word in body["detail"] for word in words), body
    assert (sorted(config.jobs_dir.iterdir()) if config.jobs_dir.is_dir() else []) == before
    assert test_client.get("/jobs").json()["total"] == 0


def test_a_size_the_model_supports_is_queued(client, bad_input_library) -> None:
    test_client, config = client
    options = {**TINY, "preprocess": {"area": [256, 256]}}
    code, body = _send(test_client, *(bad_input_library[k].read_bytes() for k in ("image", "video")), options)
    assert code == 201, body
    assert (config.jobs_dir / body["id"] / "inputs").is_dir()
    assert test_client.delete(f"/jobs/{body['id']}").json()["deleted"] is False  # cancelled while queued


def test_a_killed_attempts_staging_is_removed_and_finished_work_kept(tmp_path: Path) -> None:
    from wanimate.serve.worker import remove_staging
    from wanimate.workdir import WorkDir

    job = tmp_path / "job"
    (job / "inputs").mkdir(parents=True)
    (job / "inputs" / "image.png").write_bytes(b"kept")
    (job / "inputs" / "video.upload").write_bytes(b"half an upload")
    (job / ".result.mp4.partial").write_bytes(b"half a video")
    with WorkDir(job / "work", explicit=False):
        (job / "work" / "segments").mkdir()
        (job / "work" / "segments" / "00000.safetensors").write_bytes(b"finished")
        (job / "work" / "segments" / ".00001.safetensors.partial").write_bytes(b"half")
        (job / "work" / ".materials-0123456789abcdef.partial").mkdir()
        (job / "work" / ".materials-0123456789abcdef.partial" / "src_pose.mp4").write_bytes(b"half")
    remove_staging(job)
    left = sorted(str(p.relative_to(job)) for p in job.rglob("*") if p.is_file())
    assert left == ["inputs/image.png", "work/.wanimate-work", "work/segments/00000.safetensors"]
