"""Speed options keep the output: batched CFG, attention backends, compiled blocks, step-distill LoRAs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from engine_runs import run_engine

from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.models.attention import compile_blocks, set_attention, unusable_reason, usable_backends
from wanimate.models.distill import ADAPTER_NAME
from wanimate.models.factory import build_pipeline
from wanimate.models.lora import count_lora_layers

pytestmark = pytest.mark.usefixtures("one_thread")
SETTINGS = dict(steps=3, seed=5)


@pytest.fixture(scope="module")
def materials(tiny_materials):
    return tiny_materials


CPU = torch.device("cpu")


def test_batched_cfg_matches_two_passes(materials):
    pipe = build_pipeline("tiny")
    batched = run_engine(pipe, materials, **SETTINGS, guidance=2.5, batch_cfg=True)
    separate = run_engine(pipe, materials, **SETTINGS, guidance=2.5, batch_cfg=False)
    plain = run_engine(pipe, materials, **SETTINGS, guidance=1.0)
    assert np.abs(batched - separate).max() <= 1e-5
    assert np.abs(batched - plain).max() > 1e-3  # guidance really did something


def test_cpu_backends_and_fallback(caplog):
    usable = usable_backends(CPU)
    assert "native" in usable and "_native_math" in usable
    assert "flash" not in usable and "sage" not in usable
    assert "Hub" in (unusable_reason("flash_hub", CPU) or "")
    transformer = build_pipeline("tiny").transformer
    with caplog.at_level(logging.WARNING, logger="wanimate"):
        assert set_attention(transformer, "flash", CPU) == "native"
    assert "falling back to native" in caplog.text
    with pytest.raises(WanimateError, match="unknown backend"):
        set_attention(transformer, "warp-drive", CPU)


def test_math_backend_matches_native(materials):
    native = run_engine(build_pipeline("tiny"), materials, **SETTINGS)
    math = run_engine(build_pipeline("tiny"), materials, **SETTINGS, attention="_native_math")
    assert np.abs(native - math).max() <= 1e-5


def _lightx2v_style_lora(transformer, up_scale: float) -> dict[str, torch.Tensor]:
    """A LoRA in lightx2v's key style (original Wan module names, lora_down/lora_up/alpha) for every block linear."""
    g = torch.Generator().manual_seed(1)
    names = {
        "self_attn.q": "attn1.to_q", "self_attn.k": "attn1.to_k", "self_attn.v": "attn1.to_v",
        "self_attn.o": "attn1.to_out.0", "cross_attn.q": "attn2.to_q", "cross_attn.k": "attn2.to_k",
        "cross_attn.v": "attn2.to_v", "cross_attn.o": "attn2.to_out.0", "cross_attn.k_img": "attn2.add_k_proj",
        "cross_attn.v_img": "attn2.add_v_proj", "ffn.0": "ffn.net.0.proj", "ffn.2": "ffn.net.2",
    }  # fmt: skip
    state = {}
    for i, block in enumerate(transformer.blocks):
        for native, ours in names.items():
            layer = block.get_submodule(ours)
            key = f"diffusion_model.blocks.{i}.{native}"
            state[f"{key}.lora_down.weight"] = torch.randn(4, layer.in_features, generator=g)
            state[f"{key}.lora_up.weight"] = torch.randn(layer.out_features, 4, generator=g) * up_scale
            state[f"{key}.alpha"] = torch.tensor(4.0)
    return state


def test_zero_distill_lora_changes_nothing_and_a_real_one_does(materials, tmp_path):
    from safetensors.torch import save_file

    pipe = build_pipeline("tiny")
    reference = run_engine(pipe, materials, **SETTINGS)
    zero, real = tmp_path / "zero.safetensors", tmp_path / "real.safetensors"
    save_file(_lightx2v_style_lora(pipe.transformer, 0.0), str(zero))
    save_file(_lightx2v_style_lora(pipe.transformer, 0.5), str(real))
    assert np.array_equal(run_engine(pipe, materials, **SETTINGS, distill_lora=str(zero)), reference)
    assert count_lora_layers(pipe.transformer, ADAPTER_NAME) == 12 * len(pipe.transformer.blocks)

    other = build_pipeline("tiny")
    changed = run_engine(other, materials, **SETTINGS, distill_lora=str(real))
    assert np.abs(changed - reference).max() > 1e-3
    quiet = run_engine(other, materials, **SETTINGS, distill_lora=str(real), distill_scale=0.0)
    assert ADAPTER_NAME in other.transformer.peft_config  # still loaded, inactive
    assert np.abs(quiet - reference).max() <= 1e-6


def test_lightx2v_preset_is_four_steps_without_cfg():
    preset = GenerateSettings(preset="lightx2v", steps=20, guidance=3.0, shift=8.0)
    assert (preset.steps, preset.guidance, preset.shift) == (4, 1.0, 5.0)
    with pytest.raises(WanimateError, match="--preset"):
        GenerateSettings(preset="turbo")


@torch.no_grad()
def test_compiled_blocks_match_eager():
    transformer = build_pipeline("tiny").transformer
    g = torch.Generator().manual_seed(0)
    inputs = dict(
        hidden_states=torch.randn(1, 36, 3, 4, 4, generator=g),
        timestep=torch.tensor([500.0]),
        encoder_hidden_states=torch.randn(1, 8, 32, generator=g),
        encoder_hidden_states_image=torch.randn(1, 257, 4, generator=g),
        pose_hidden_states=torch.randn(1, 16, 2, 4, 4, generator=g),
        face_pixel_values=torch.rand(1, 3, 5, 16, 16, generator=g) * 2 - 1,
        return_dict=False,
    )
    eager = transformer(**inputs)[0]
    compile_blocks(transformer, CPU)
    compiled = transformer(**inputs)[0]
    assert all(hasattr(block, "_orig_mod") or hasattr(block, "_compiled_call_impl") for block in transformer.blocks)
    assert (compiled - eager).abs().max() <= 1e-4
