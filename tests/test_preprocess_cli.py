"""``wanimate preprocess`` on bad input: one clear line, exit code 2, and no materials folder left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_preprocess_media import carphone_frames, write_clip

from wanimate.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _args(image: Path, video: Path, out: Path, *extra: str, quiet: bool = True) -> list[str]:
    args = ["preprocess", "--image", str(image), "--video", str(video), "-o", str(out), *extra]
    return [*args, "--quiet"] if quiet else args


def _assert_failed_cleanly(code: int, err: str, out: Path, *needles: str) -> None:
    assert code == 2, err
    message = " ".join(err.split())
    assert message.startswith("error:")
    for needle in needles:
        assert needle in message, message
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


@pytest.fixture(scope="module")
def talk(carphone_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("talk") / "talk.mp4", carphone_frames(carphone_video, 12), 30.0)


def test_video_without_a_person_reports_the_frames_scanned(
    astronaut_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    empty = [
        np.full((128, 128, 3), 90 + 4 * i, np.uint8) + rng.integers(0, 3, (128, 128, 3), np.uint8) for i in range(10)
    ]
    video = write_clip(tmp_path / "empty.mp4", empty)
    out = tmp_path / "m"
    code, _, err = _run(_args(astronaut_image, video, out), capsys)
    _assert_failed_cleanly(code, err, out, "no person", "10 frames scanned")


def test_image_without_a_person_suggests_no_retarget(
    talk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "wall.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(image)
    out = tmp_path / "m"
    code, _, err = _run(_args(image, talk, out), capsys)
    _assert_failed_cleanly(code, err, out, "no person", "--no-retarget")


@pytest.mark.parametrize("damage", ["junk", "truncated", "codec"])
def test_unreadable_videos_fail_cleanly(
    damage: str, astronaut_image: Path, talk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = talk.read_bytes()
    video = tmp_path / f"{damage}.mp4"
    if damage == "junk":
        video.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        video.write_bytes(data[: len(data) // 2])
    else:  # an unknown codec tag: the container opens, nothing can decode it
        assert data.count(b"avc1") >= 1
        video.write_bytes(data.replace(b"avc1", b"zzz1"))
    out = tmp_path / "m"
    code, _, err = _run(_args(astronaut_image, video, out), capsys)
    _assert_failed_cleanly(code, err, out, video.name)


def test_video_with_zero_frames_fails_cleanly(
    astronaut_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import av

    video = tmp_path / "zero.mp4"
    container = av.open(str(video), mode="w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 128, 128, "yuv420p"
    container.start_encoding()
    container.close()
    out = tmp_path / "m"
    code, _, err = _run(_args(astronaut_image, video, out), capsys)
    _assert_failed_cleanly(code, err, out, "zero.mp4")


def test_inputs_under_64_px_are_refused(
    astronaut_image: Path, talk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_video = write_clip(tmp_path / "tiny.mp4", [np.zeros((48, 48, 3), np.uint8)] * 3)
    out = tmp_path / "m"
    code, _, err = _run(_args(astronaut_image, tiny_video, out), capsys)
    _assert_failed_cleanly(code, err, out, "48x48", "at least 64")
    tiny_image = tmp_path / "tiny.png"
    Image.new("RGB", (40, 90)).save(tiny_image)
    code, _, err = _run(_args(tiny_image, talk, out), capsys)
    _assert_failed_cleanly(code, err, out, "40x90", "at least 64")


def test_over_4k_image_is_downscaled_with_a_notice(
    astronaut_image: Path, talk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wide = np.zeros((600, 4000, 3), np.uint8)
    wide[:, 1700:2300] = np.asarray(Image.open(astronaut_image).resize((600, 600)))
    image = tmp_path / "wide.png"
    Image.fromarray(wide).save(image)
    out = tmp_path / "m"
    code, stdout, err = _run(_args(image, talk, out, "--area", "256x256", "--no-retarget"), capsys)
    assert code == 0, err
    assert "downscaled to 3840x576" in " ".join(err.split())
    meta = json.loads((out / "meta.json").read_text())
    assert meta["provenance"]["inputs"]["image"]["size"] == [4000, 600]
    assert meta["width"] / meta["height"] == pytest.approx(4000 / 600, rel=0.1)
    assert f"wrote {out}" in stdout


def test_person_lost_mid_video_is_reported_not_fatal(
    astronaut_image: Path, carphone_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = carphone_frames(carphone_video, 10)
    gone = [np.full_like(frames[0], 100)] * 14  # the performer leaves for longer than any gap we bridge
    video = write_clip(tmp_path / "leaves.mp4", frames + gone)
    out = tmp_path / "m"
    code, _, err = _run(_args(astronaut_image, video, out, "--area", "128x128", "--no-retarget", quiet=False), capsys)
    assert code == 0, err
    assert "warning:" in err and "lost" in err
    assert "pass 2/2" in err and "24/24" in err  # the progress bars ran to the real frame count
    tracking = json.loads((out / "meta.json").read_text())["provenance"]["tracking"]
    assert tracking["frames_missing"] >= 10
    detected = np.load(out / "keypoints.npz")["detected"]
    assert detected[:8].all() and not detected[-6:].any()


def test_asking_for_a_person_who_is_not_there_fails_cleanly(
    astronaut_image: Path, talk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    code, _, err = _run(_args(astronaut_image, talk, out, "--person", "3", "--no-retarget"), capsys)
    _assert_failed_cleanly(code, err, out, "--person 3", "there is no person 3; 1 people were tracked")


def test_existing_output_needs_overwrite_and_user_data_is_never_clobbered(
    astronaut_image: Path, talk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = _run(_args(astronaut_image, talk, out, "--no-retarget"), capsys)
    assert code == 2 and "--overwrite" in err
    code, _, err = _run(_args(astronaut_image, talk, out, "--no-retarget", "--overwrite"), capsys)
    assert code == 2 and "not a materials folder" in " ".join(err.split())
    assert (out / "notes.txt").read_text() == "mine"

    (out / "notes.txt").unlink()
    code, _, err = _run(_args(astronaut_image, talk, out, "--no-retarget", "--area", "128x128"), capsys)
    assert code == 2  # even an empty folder needs --overwrite
    code, _, err = _run(_args(astronaut_image, talk, out, "--no-retarget", "--area", "128x128", "--overwrite"), capsys)
    assert code == 0, err
    first = (out / "meta.json").read_text()
    code, _, err = _run(_args(astronaut_image, talk, out, "--no-retarget", "--area", "192x192", "--overwrite"), capsys)
    assert code == 0, err
    assert (out / "meta.json").read_text() != first  # a previous materials folder may be replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_bad_options_are_one_line_errors(
    astronaut_image: Path, talk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    for extra, needle in (
        (["--mode", "dance"], "--mode"),
        (["--fps", "fast"], "--fps"),
        (["--area", "big"], "--area"),
        (["--person", "left"], "--person"),
        (["--mask-k", "0"], "--mask-k"),
    ):
        code, _, err = _run(_args(astronaut_image, talk, out, *extra), capsys)
        _assert_failed_cleanly(code, err, out, needle)


def test_a_real_terminal_sees_one_error_line_not_native_log_chatter(talk: Path, tmp_path: Path) -> None:
    """MediaPipe's C++ logging writes straight to fd 2; the command keeps it off the user's screen."""
    import subprocess
    import sys

    image = tmp_path / "wall.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(image)
    out = tmp_path / "m"
    done = subprocess.run(
        [sys.executable, "-m", "wanimate", *_args(image, talk, out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no person found in the character image"), done.stderr
    assert not out.exists()


def test_over_4k_video_is_downscaled_with_a_notice(
    astronaut_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wide = [np.full((128, 4000, 3), 60 + 10 * i, np.uint8) for i in range(3)]
    video = write_clip(tmp_path / "wide.mp4", wide)
    out = tmp_path / "m"
    code, _, err = _run(_args(astronaut_image, video, out), capsys)
    message = " ".join(err.split())
    assert "note: driving video is 4000x128 (over 3840 px); frames are downscaled" in message
    _assert_failed_cleanly(code, message[message.index("error:") :], out, "3 frames scanned")
