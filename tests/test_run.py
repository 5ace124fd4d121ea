"""`wanimate run`: preprocessing + preview or Wan generation in one work folder, cached, with a compare video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from PIL import Image

from wanimate.cli import main
from wanimate.generate import GenerateSettings
from wanimate.run import run
from wanimate.run.backend import choose_backend
from wanimate.video import VideoWriter, iter_frames, probe_video

SMALL = {"area": (320, 320)}


@pytest.fixture(scope="module")
def short_drive(tmp_path_factory, carphone_video) -> Path:
    """The first 24 frames of the carphone clip: a real person, short enough for a fast test."""
    path = tmp_path_factory.mktemp("drive") / "drive.mp4"
    with VideoWriter(path, probe_video(carphone_video).fps) as writer:
        for index, frame in enumerate(iter_frames(carphone_video)):
            if index == 24:
                break
            writer.write(frame)
    return path


def test_preview_run_writes_result_compare_and_reuses_materials(tmp_path, astronaut_image, short_drive):
    out = tmp_path / "out.mp4"
    first = run(
        astronaut_image,
        short_drive,
        out,
        backend="preview",
        compare=tmp_path / "side.mp4",
        preprocess_options=SMALL,
        progress_bars=False,
    )
    assert first.backend == "preview" and first.preprocessed
    info = probe_video(out)
    assert info.num_frames == 24
    assert probe_video(tmp_path / "side.mp4").num_frames == 24
    still = np.asarray(Image.open(tmp_path / "side.png"))
    assert still.shape[1] > 3 * 300  # three tiles side by side

    second = run(
        astronaut_image,
        short_drive,
        out,
        backend="preview",
        preprocess_options=SMALL,
        settings=GenerateSettings(seed=1),
        overwrite=True,
        progress_bars=False,
    )
    assert not second.preprocessed and second.materials == first.materials

    third = run(
        astronaut_image,
        short_drive,
        out,
        backend="preview",
        preprocess_options=SMALL,
        fresh=True,
        overwrite=True,
        progress_bars=False,
    )
    assert third.preprocessed


def test_replace_mode_preview(tmp_path, astronaut_image, short_drive):
    result = run(
        astronaut_image,
        short_drive,
        tmp_path / "out.mp4",
        mode="replace",
        backend="preview",
        preprocess_options=SMALL,
        progress_bars=False,
    )
    assert (result.materials / "src_mask.mp4").is_file()
    assert probe_video(result.output).num_frames == 24


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path / "hf" / "hub"


def _cache_tiny_model(cache: Path, repo_id: str) -> None:
    from wanimate.models.factory import build_pipeline

    revision = "feedc0de" * 5
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    build_pipeline("tiny").save_pretrained(repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)


def test_auto_backend_picks_wan_only_when_weights_are_cached(hub_cache, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_backend("auto", "Tiny/Animate", "cpu") == "preview"  # nothing cached
    _cache_tiny_model(hub_cache, "Tiny/Animate")
    assert choose_backend("auto", "Tiny/Animate", "cpu") == "wan"  # cached, and CPU explicitly asked for
    assert choose_backend("auto", "Tiny/Animate", "auto") == "preview"  # cached, but no GPU
    assert choose_backend("preview", "Tiny/Animate", "cpu") == "preview"


def test_auto_run_generates_with_cached_tiny_model(hub_cache, tmp_path, astronaut_image, short_drive, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _cache_tiny_model(hub_cache, "Tiny/Animate")
    settings = GenerateSettings(steps=1, segment_frames=13, dtype="fp32", device="cpu", prompt="w1")
    result = run(
        astronaut_image,
        short_drive,
        tmp_path / "out.mp4",
        weights="Tiny/Animate",
        settings=settings,
        preprocess_options={"area": (128, 128)},
        progress_bars=False,
    )
    assert result.backend == "wan"
    info = probe_video(result.output)
    assert info.num_frames == 24 and (info.width, info.height) == (128, 128)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys, short_drive):
    code = None
    try:
        main(
            [
                "run",
                "--image",
                str(tmp_path / "missing.png"),
                "--video",
                str(short_drive),
                "-o",
                str(tmp_path / "o.mp4"),
            ]
        )
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert "character image not found" in capsys.readouterr().err

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    try:
        main(
            [
                "run",
                "--image",
                str(blank),
                "--video",
                str(short_drive),
                "-o",
                str(tmp_path / "o.mp4"),
                "--backend",
                "preview",
                "--area",
                "256x256",
            ]
        )
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "person" in err or "body" in err
    assert not (tmp_path / "o.mp4").exists()
    assert not (tmp_path / "o.work").exists()  # an early error leaves no empty work folder
