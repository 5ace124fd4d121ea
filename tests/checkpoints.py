"""Small checkpoints in every weights layout, shared by the layout, streaming and pre-quantized tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, CLIPVisionModel

from wanimate.bench.load import step_inputs
from wanimate.models import factory
from wanimate.models.official_export import save_official
from wanimate.models.official_io import dit_shards
from wanimate.models.streaming import is_quantized_tensor


def reference_pipeline():
    """The tiny factory pipeline with a CLIP tower of ViT-H head width (80), which the official
    checkpoint format implies because it stores no head count."""
    pipe = factory.build_pipeline("tiny")
    cfg = factory.model_config("tiny")
    pipe.transformer = factory.build_transformer(
        dataclasses.replace(cfg, transformer={**cfg.transformer, "image_dim": 80}), seed=3
    )
    torch.manual_seed(1)
    pipe.image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=80,
            intermediate_size=160,
            num_hidden_layers=2,
            num_attention_heads=1,
            patch_size=14,
            image_size=28,
            hidden_act="gelu",
            projection_dim=80,
        )
    ).eval()
    return pipe


def write_layouts(pipe, root: Path) -> dict[str, Path]:
    """``pipe`` as an official folder, a diffusers folder, and single files with native (ComfyUI-prefixed)
    and diffusers keys."""
    off = save_official(pipe, root / "official")
    pipe.save_pretrained(root / "diffusers")
    native = {}
    for shard in dit_shards(off):
        native.update(load_file(shard))
    save_file({"model.diffusion_model." + k: v for k, v in native.items()}, root / "comfy_native.safetensors")
    save_file(dict(pipe.transformer.state_dict()), root / "diffusers_keys.safetensors")
    return {
        "official": off,
        "diffusers": root / "diffusers",
        "comfy": root / "comfy_native.safetensors",
        "single": root / "diffusers_keys.safetensors",
    }


def put_in_cache(cache: Path, repo_id: str, source: Path, revision: str = "0123abcd" * 5) -> Path:
    """Lay ``source`` out exactly like a hub download: models--Org--Name/snapshots/<rev>/ + refs/main."""
    import shutil

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(source, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return repo / "snapshots" / revision


def assert_same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """Every parameter and buffer identical, looking inside torchao's int8 tensors (data, scale, zero point)."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key, x in sa.items():
        y = sb[key]
        assert type(x) is type(y) and x.dtype == y.dtype, key
        if is_quantized_tensor(x):
            for part in x.__tensor_flatten__()[0]:
                assert torch.equal(getattr(x, part), getattr(y, part)), f"{key}.{part}"
        else:
            assert torch.equal(x.view(torch.uint8), y.view(torch.uint8)), key


def outputs(transformer: torch.nn.Module) -> torch.Tensor:
    """One bf16 forward at 32x32, 5 frames, fixed random inputs."""
    with torch.no_grad():
        return transformer(**step_inputs(transformer, 32, 32, 5, torch.bfloat16))[0]
