"""The cast on the real tracker: the ids of the people sheet (``wanimate people``, ``POST /people``)
are the ids ``--cast`` takes, on a ground-truth composite of real people (``wanimate.scenes``).

The clip is the first frames of ``example:crowd`` (768x576, four people 100-130 px tall): ids are
numbered left to right in the first frame, so the truth's boxes say which id is who.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from wanimate import scenes
from wanimate.cast.folder import load_cast
from wanimate.cast.run import CastOptions, preprocess_cast
from wanimate.serve.app import create_app
from wanimate.serve.config import ServeConfig

FRAMES = 6


def _iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    scene = dataclasses.replace(scenes.wide_shot(), frames=FRAMES)
    _, truth = scenes.render(scene, 0)
    video = scenes.write_scene(scene, tmp_path_factory.mktemp("crowd") / "crowd.mp4")
    return video, [box for box in truth.boxes if box is not None]


@pytest.fixture(scope="module")
def client(tmp_path_factory, crowd):
    root = tmp_path_factory.mktemp("serve-people")
    (root / "in").mkdir()
    (root / "in" / "crowd.mp4").write_bytes(crowd[0].read_bytes())
    config = ServeConfig(data_dir=root / "data", input_root=root / "in", max_video_bytes=5_000_000)
    with TestClient(create_app(config, worker=False)) as test_client:
        yield test_client, config


@pytest.fixture(scope="module")
def listing(client, crowd):
    test_client, _ = client
    with crowd[0].open("rb") as file:
        response = test_client.post("/people", files={"video": ("crowd.mp4", file, "video/mp4")})
    assert response.status_code == 200, response.text
    return response.json()


def test_people_endpoint_returns_the_sheet_and_everyone_with_their_id(listing, crowd, client):
    _, truth = crowd
    assert listing["video"] == {"width": 768, "height": 576, "num_frames": FRAMES, "fps": 20.0}
    people = listing["people"]
    assert [p["id"] for p in people] == list(range(len(truth)))  # everyone in frame 0, numbered from 0
    by_x = sorted(truth, key=lambda box: box[0] + box[2])  # left to right: the id order
    for person in people:
        assert person["first_frame"] == 0
        assert _iou(person["first_box"], by_x[person["id"]]) > 0.4, person
    assert listing["lines"][0].startswith(f"{len(people)} people in ") and len(listing["lines"]) == len(people) + 2
    head, data = listing["sheet"].split(",", 1)
    assert head == "data:image/png;base64"
    sheet = Image.open(io.BytesIO(base64.b64decode(data)))
    assert sheet.format == "PNG" and sheet.width == 960
    _, config = client
    assert not [p for p in config.data_dir.iterdir() if p.name.startswith(".people-")]  # the upload is gone


def test_people_endpoint_reads_a_confined_path_and_refuses_bad_requests(client, listing):
    test_client, _ = client
    by_path = test_client.post("/people", data={"options": json.dumps({"video_path": "crowd.mp4"})})
    assert by_path.status_code == 200, by_path.text
    assert [p["id"] for p in by_path.json()["people"]] == [p["id"] for p in listing["people"]]
    cases = [
        ({}, None, 400, "exactly one"),
        ({"video_path": "../etc/passwd"}, None, 403, "outside the input root"),
        ({"max_people": 0}, ("v.mp4", b"x" * 100), 422, "max_people"),
        ({}, ("v.mp4", b"not a video at all"), 415, "not a video"),
    ]
    for options, upload, status, words in cases:
        files = {"video": (upload[0], upload[1], "video/mp4")} if upload else None
        response = test_client.post("/people", data={"options": json.dumps(options)}, files=files)
        assert response.status_code == status and words in response.text, (options, response.text)


def test_preprocess_cast_tracks_the_ids_of_the_people_sheet(listing, crowd, tmp_path, astronaut_image):
    video, _ = crowd
    people = {p["id"]: p for p in listing["people"]}
    chosen = sorted(people)[-2:]  # the two rightmost: ids a left-to-right guess would not give 0 and 1
    out = tmp_path / "cast"
    folder = preprocess_cast(
        {chosen[1]: astronaut_image, chosen[0]: astronaut_image},
        video,
        out,
        mode="replace",
        options=CastOptions(area=(384, 288)),
        progress=False,
    )
    assert [m.person for m in folder.members] == chosen
    arrays = load_cast(out).arrays()
    scale = 384 / 768
    for row, person in enumerate(arrays.ids):
        box = arrays.boxes[row, 0] / scale  # output pixels back to the video's
        assert _iou(box, people[int(person)]["first_box"]) > 0.7, (person, box, people[int(person)])
    layer = Image.open(out / "cast_layers" / f"character_{chosen[0]}.png")  # the character cut out
    assert layer.mode == "RGBA"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cast"]  # the tracking folder beside it is gone
