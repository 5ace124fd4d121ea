"""Colour correction across segments: the statistics move as asked, and a resumed run stays bit-identical."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wanimate.generate import GenerateSettings, generate
from wanimate.generate.color_match import lab_stats, match_segment
from wanimate.materials.synthetic import write_materials
from wanimate.models.loading import load_model


def _segments(work) -> list[np.ndarray]:
    from safetensors.numpy import load_file

    return [load_file(str(p))["frames"] for p in sorted((work / "segments").glob("*.safetensors"))]


def _decoded(offset: float) -> torch.Tensor:
    rng = np.random.default_rng(0)
    frames = rng.uniform(-0.6, 0.4, (1, 3, 5, 16, 16)).astype(np.float32) + offset
    return torch.from_numpy(frames)


def _stats(decoded: torch.Tensor) -> np.ndarray:
    frames = ((decoded[0].permute(1, 2, 3, 0).numpy() + 1) / 2 * 255).round().clip(0, 255).astype(np.uint8)
    return lab_stats(frames)


def test_full_strength_matches_the_reference_statistics_and_zero_changes_nothing():
    reference = _stats(_decoded(0.0))
    drifted = _decoded(0.25)  # brighter: the drift a later segment shows
    assert np.abs(_stats(drifted)[:3] - reference[:3]).max() > 5
    corrected = match_segment(drifted, reference, 1.0)
    assert np.abs(_stats(corrected) - reference).max() < 0.6  # uint8 rounding
    half = match_segment(drifted, reference, 0.5)
    assert _stats(half)[0] == pytest.approx((_stats(drifted)[0] + reference[0]) / 2, abs=0.6)
    assert match_segment(drifted, reference, 0.0) is drifted


def test_resumed_run_with_correction_is_bit_identical(tmp_path, one_thread):
    model = load_model("random:tiny", device="cpu")
    materials = write_materials(tmp_path / "m", num_frames=25)  # 3 segments of 9
    settings = GenerateSettings(
        steps=2, segment_frames=9, dtype="fp32", device="cpu", prompt="w1", color_correction=1.0
    )
    plain = GenerateSettings(steps=2, segment_frames=9, dtype="fp32", device="cpu", prompt="w1")
    work = tmp_path / "o.work"
    generate(materials, tmp_path / "o.mp4", settings=settings, model=model, work_dir=work, keep_work=True)
    full = _segments(work)
    for index in (1, 2):
        (work / "segments" / f"{index:05d}.safetensors").unlink()
    generate(
        materials, tmp_path / "o.mp4", settings=settings, model=model, work_dir=work, keep_work=True, overwrite=True
    )
    for a, b in zip(full, _segments(work), strict=True):
        assert np.array_equal(a, b)
    generate(materials, tmp_path / "p.mp4", settings=plain, model=model, work_dir=tmp_path / "p.work", keep_work=True)
    uncorrected = _segments(tmp_path / "p.work")
    assert np.array_equal(uncorrected[0], full[0])  # the first segment is the reference: untouched
    assert not np.array_equal(uncorrected[2], full[2])
