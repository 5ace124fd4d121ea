"""``wanimate convert`` and ``wanimate info`` on a command app holding only the weights commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import typer
from huggingface_hub import constants
from typer.testing import CliRunner

from wanimate.errors import WanimateError
from wanimate.models.command import register
from wanimate.models.factory import build_pipeline
from wanimate.models.loading import load_model
from wanimate.models.official_export import save_official


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app, typer.Typer())
    return app


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path / "hf"


def test_convert_writes_a_loadable_diffusers_folder(app: typer.Typer, tmp_path: Path) -> None:
    pipe = build_pipeline("tiny")
    # the factory's 4-wide CLIP has no official equivalent (ViT-H heads are 80 wide), so use one that does
    from transformers import CLIPVisionConfig, CLIPVisionModel

    pipe.image_encoder = CLIPVisionModel(
        CLIPVisionConfig(hidden_size=80, intermediate_size=160, num_hidden_layers=1, num_attention_heads=1,
                         patch_size=14, image_size=28, hidden_act="gelu")
    ).eval()  # fmt: skip
    official = save_official(pipe, tmp_path / "official", dit_shards=1)
    result = CliRunner().invoke(app, ["convert", str(official), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'out'}" in result.output
    loaded = load_model(str(tmp_path / "out"), dtype=torch.float32, progress=False)
    assert loaded.layout == "diffusers"
    for key, value in pipe.transformer.state_dict().items():
        assert torch.equal(loaded.pipeline.transformer.state_dict()[key], value), key

    again = CliRunner().invoke(app, ["convert", str(official), str(tmp_path / "out")])
    assert isinstance(again.exception, WanimateError) and "already exists" in str(again.exception)


def test_info_reports_versions_device_backends_and_cached_weights(app: typer.Typer, hf_home: Path) -> None:
    repo = hf_home / "hub" / "models--Wan-AI--Wan2.2-Animate-14B"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "snapshots" / "abc" / "config.json").write_bytes(b"x" * 2048)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    out = result.output
    for name in ("torch", "diffusers", "transformers", "av", "mediapipe", "wanimate"):
        assert f"\n  {name} " in out
    assert "device: " in out and ("cpu" in out or "cuda" in out or "mps" in out)
    assert "available here: " in out and "native" in out  # torch SDPA is always importable
    assert "Wan-AI/Wan2.2-Animate-14B" in out and "hub" in out
