"""``wanimate run --cast``: the glue from a video and character images to a cast video, and its refusals.

Tracking is replaced by the ground truth of a composite here (its own tests belong to the tracker);
the character images are real photos, found and cut out by the real pose backend and segmenter.
"""

from __future__ import annotations

import matplotlib.cbook
import pytest
from cast_fixtures import crossing_scene
from PIL import Image

from wanimate.cast.folder import is_cast_folder, load_cast
from wanimate.cli import main
from wanimate.run import run
from wanimate.video import probe_video


@pytest.fixture(scope="module")
def cast_inputs(tmp_path_factory, astronaut_image):
    root = tmp_path_factory.mktemp("cast-run")
    scene = crossing_scene(2, frames=8, size=(128, 192))
    video = scene.write(root / "scene.mp4")
    hopper = root / "hopper.png"
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        Image.open(file).convert("RGB").save(hopper)
    return scene, video, astronaut_image, hopper


@pytest.fixture
def tracked(monkeypatch, cast_inputs):
    """Tracking answers with the composite's truth, and counts its calls."""
    calls = []

    def truth(video, any_image, work, tracking, **kwargs):
        calls.append(video)
        return cast_inputs[0].people

    monkeypatch.setattr("wanimate.cast.track.track_people", truth)
    return calls


def _cli(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("mode", ["animate", "replace"])
def test_run_cast_preview_writes_the_video_and_reuses_the_cast(mode, tmp_path, cast_inputs, tracked):
    _, video, astronaut, hopper = cast_inputs
    out = tmp_path / "out.mp4"
    kw = dict(mode=mode, backend="preview", progress_bars=False, area=(192, 128), background="neutral")
    first = run(None, video, out, cast={0: astronaut, 1: hopper}, **kw)
    info = probe_video(out)
    assert (info.num_frames, info.width, info.height) == (8, 192, 128)
    assert first.preprocessed and is_cast_folder(first.materials)
    cast = load_cast(first.materials)
    assert (cast.mode, [m.person for m in cast.members]) == (mode, [0, 1])
    assert [m.image.name for m in cast.members] == [astronaut.name, "hopper.png"]
    again = run(None, video, out, cast=[f"0={astronaut}", f"1={hopper}"], overwrite=True, **kw)
    assert not again.preprocessed and again.materials == first.materials and len(tracked) == 1


def test_images_in_order_are_assigned_left_to_right(tmp_path, cast_inputs, tracked):
    scene, video, astronaut, hopper = cast_inputs
    result = run(
        [astronaut, hopper],
        video,
        tmp_path / "o.mp4",
        backend="preview",
        progress_bars=False,
        area=(192, 128),
        background="neutral",
    )
    left = min(scene.people.people, key=lambda p: p.boxes[0, 0]).id
    members = {m.person: m.image.name for m in load_cast(result.materials).members}
    assert members[left] == astronaut.name


def test_bad_cast_is_one_line_exit_2_and_writes_nothing(tmp_path, cast_inputs, tracked, capsys):
    _, video, astronaut, hopper = cast_inputs
    out = tmp_path / "bad.mp4"
    plain = tmp_path / "plain.png"
    Image.new("RGB", (200, 200), (120, 120, 120)).save(plain)
    base = ["run", "--video", str(video), "-o", str(out), "--backend", "preview", "--area", "192x128"]
    cases = {
        "never appears": (["--cast", f"0={astronaut}", "--cast", f"5={hopper}"], "cast id 5 never appears"),
        "cast twice": (["--cast", f"0={astronaut}", "--cast", f"0={hopper}"], "person 0 is cast twice"),
        "no figure": (["--cast", f"0={astronaut}", "--cast", f"1={plain}"], "no figure found in the cast image"),
        "not an image": (["--cast", f"0={astronaut}", "--cast", f"1={video}"], "is not an image"),
        "too many": ([arg for i in range(8) for arg in ("--cast", f"{i}={astronaut}")], "at most 7"),
        "no multi path": (["--cast", f"0={astronaut}", "--model", "animate"], "animates one character"),
        "replace with multianimate": (
            ["--cast", f"0={astronaut}", "--mode", "replace", "--model", "multianimate"],
            "MultiAnimate has no replace mode",
        ),
        "checkpoint too small": (
            [
                *(a for i in range(4) for a in ("--cast", f"{i}={astronaut}")),
                "--backend",
                "wan",
                "--adapter",
                "multianimate-3",
            ],
            "supports up to 3",
        ),
    }
    for name, (args, message) in cases.items():
        code, err = _cli([*base, *args], capsys)
        assert code == 2, (name, err)
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
        assert not out.exists() and not (tmp_path / "bad.work").exists(), name
