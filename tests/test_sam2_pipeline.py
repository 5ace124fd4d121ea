"""SAM2 masks end to end: `preprocess` and `run` use SAM2 when it imports and a checkpoint is found.

The real ``sam2`` package needs torchvision, which this project never installs, so a stand-in
predictor (the ``fake_sam2`` fixture) answers with a known box; the materials' mask must be that box
grown the official way, in every frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wanimate.errors import WanimateError
from wanimate.preprocess import preprocess
from wanimate.preprocess.masks import refine_mask
from wanimate.video import iter_frames, probe_video

FRAMES = 6


@pytest.fixture(scope="module")
def clip(carphone_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wanimate.bench.serve import short_clip

    return short_clip(carphone_video, tmp_path_factory.mktemp("clip") / "drive.mp4", FRAMES)


def _expected_mask(height: int, width: int) -> np.ndarray:
    box = np.zeros((height, width), bool)
    box[height // 4 : height // 2, width // 4 : width // 2] = True
    return refine_mask(box)


def _check_masks(materials: Path, calls: dict) -> None:
    meta = json.loads((materials / "meta.json").read_text())
    assert meta["provenance"]["mask_backend"] == "sam2"
    height, width = meta["height"], meta["width"]
    expected = _expected_mask(height, width)
    masks = [frame[..., 0] >= 128 for frame in iter_frames(materials / "src_mask.mp4")]
    assert len(masks) == FRAMES and calls["images"] == FRAMES  # one SAM2 prompt per frame
    for mask in masks:
        assert np.array_equal(mask, expected)


def test_preprocess_uses_sam2_with_an_explicit_checkpoint(fake_sam2, astronaut_image, clip, tmp_path):
    checkpoint = tmp_path / "sam2.1_hiera_small.pt"
    checkpoint.write_bytes(b"")
    out = tmp_path / "m"
    preprocess(astronaut_image, clip, out, mode="replace", area=(128, 128), sam2_checkpoint=checkpoint, progress=False)
    assert fake_sam2["ckpt"] == str(checkpoint) and fake_sam2["config"] == "configs/sam2.1/sam2.1_hiera_s.yaml"
    _check_masks(out, fake_sam2)


def test_run_finds_the_official_checkpoint_under_models_dir(fake_sam2, astronaut_image, clip, tmp_path):
    from wanimate.run import run

    models = tmp_path / "process_checkpoint"
    (models / "sam2").mkdir(parents=True)
    (models / "sam2" / "sam2_hiera_tiny.pt").write_bytes(b"")
    (models / "sam2" / "sam2_hiera_large.pt").write_bytes(b"")
    result = run(
        astronaut_image,
        clip,
        tmp_path / "out.mp4",
        mode="replace",
        backend="preview",
        models_dir=models,
        area=(128, 128),
        progress_bars=False,
    )
    assert fake_sam2["ckpt"] == str(models / "sam2" / "sam2_hiera_large.pt")  # the official file, largest first
    _check_masks(result.materials, fake_sam2)
    assert probe_video(result.output).num_frames == FRAMES


def test_a_missing_checkpoint_is_a_clear_error_before_any_work(astronaut_image, clip, tmp_path):
    with pytest.raises(WanimateError, match=r"--sam2-checkpoint .* is not a file"):
        preprocess(astronaut_image, clip, tmp_path / "m", mode="replace", sam2_checkpoint=tmp_path / "no.pt")
    assert not (tmp_path / "m").exists()
