"""The relighting LoRA: native ``.ckpt`` and PEFT folder layouts, exact per-layer maths, idempotence.

``Adapters`` is the record a model session keeps of the adapters it loaded."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from wanimate.errors import WanimateError
from wanimate.models.adapters import Adapters
from wanimate.models.factory import build_pipeline
from wanimate.models.lora import ADAPTER_NAME, NATIVE_LORA_ALPHA, count_lora_layers, load_relight_lora
from wanimate.models.official import dit_diffusers_module_to_native

RANK = 4


def _targets(transformer) -> list[str]:
    """What the official get_loraconfig targets: Linear layers inside blocks (face adapters are separate)."""
    return [n for n, m in transformer.named_modules() if n.startswith("blocks.") and isinstance(m, torch.nn.Linear)]


def _native_lora(transformer, zero_b: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name in _targets(transformer):
        layer = transformer.get_submodule(name)
        native = dit_diffusers_module_to_native(name)
        state[f"{native}.lora_A.default.weight"] = torch.randn(RANK, layer.in_features, generator=g)
        b = torch.zeros(layer.out_features, RANK) if zero_b else torch.randn(layer.out_features, RANK, generator=g)
        state[f"{native}.lora_B.default.weight"] = b
    return state


def _transformer_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "hidden_states": torch.randn(1, 36, 3, 4, 4, generator=g),
        "timestep": torch.tensor([500]),
        "encoder_hidden_states": torch.randn(1, 5, 32, generator=g),
        "encoder_hidden_states_image": torch.randn(1, 5, 4, generator=g),
        "pose_hidden_states": torch.randn(1, 16, 2, 4, 4, generator=g),
        "face_pixel_values": torch.randn(1, 3, 5, 16, 16, generator=g),
    }


def _relight(transformer, path: Path, scale: float = 1.0) -> Adapters:
    """The relighting LoRA from ``path`` at ``scale`` on a bare transformer, through a fresh record."""
    adapters = Adapters(SimpleNamespace(transformer=transformer))
    adapters.set_relight(path, scale)
    return adapters


def test_native_names_are_the_official_ones() -> None:
    transformer = build_pipeline("tiny").transformer
    natives = {dit_diffusers_module_to_native(n).split(".", 2)[2] for n in _targets(transformer)}
    assert natives == {
        "self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o",
        "cross_attn.q", "cross_attn.k", "cross_attn.v", "cross_attn.o", "cross_attn.k_img", "cross_attn.v_img",
        "ffn.0", "ffn.2",
    }  # fmt: skip


def test_zero_b_lora_changes_nothing(tmp_path: Path) -> None:
    transformer = build_pipeline("tiny").transformer
    inputs = _transformer_inputs()
    before = transformer(**inputs, return_dict=False)[0]
    torch.save({"state_dict": _native_lora(transformer, zero_b=True)}, tmp_path / "relighting_lora.ckpt")
    _relight(transformer, tmp_path / "relighting_lora.ckpt")
    assert count_lora_layers(transformer) == 12 * transformer.config.num_layers
    assert torch.equal(transformer(**inputs, return_dict=False)[0], before)


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_every_targeted_layer_adds_scaled_low_rank_update(tmp_path: Path, scale: float) -> None:
    transformer = build_pipeline("tiny").transformer
    lora = _native_lora(transformer, zero_b=False)
    torch.save({"state_dict": lora}, tmp_path / "relighting_lora.ckpt")
    bases = {n: transformer.get_submodule(n) for n in _targets(transformer)}
    base_weights = {n: (m.weight.detach().clone(), m.bias.detach().clone()) for n, m in bases.items()}

    _relight(transformer, tmp_path / "relighting_lora.ckpt", scale=scale)
    assert count_lora_layers(transformer) == 12 * transformer.config.num_layers

    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [
        transformer.get_submodule(n).register_forward_hook(
            lambda _m, args, out, n=n: seen.__setitem__(n, (args[0].detach(), out.detach()))
        )
        for n in bases
    ]
    transformer(**_transformer_inputs(), return_dict=False)
    for hook in hooks:
        hook.remove()
    assert seen.keys() == bases.keys()
    for name, (x, y) in seen.items():
        w, b = base_weights[name]
        native = dit_diffusers_module_to_native(name)
        a_mat, b_mat = lora[f"{native}.lora_A.default.weight"], lora[f"{native}.lora_B.default.weight"]
        expected = x @ w.T + b + scale * (NATIVE_LORA_ALPHA / RANK) * (x @ a_mat.T @ b_mat.T)
        torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4, msg=name)


def test_reapplying_only_rescales_and_a_new_file_replaces(tmp_path: Path) -> None:
    transformer = build_pipeline("tiny").transformer
    first, second = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    torch.save({"state_dict": _native_lora(transformer, zero_b=False, seed=1)}, first)
    torch.save({"state_dict": _native_lora(transformer, zero_b=True)}, second)
    inputs = _transformer_inputs()
    plain = transformer(**inputs, return_dict=False)[0]

    adapters = _relight(transformer, first, scale=1.0)
    full = transformer(**inputs, return_dict=False)[0]
    adapters.set_relight(first, 1.0)
    assert count_lora_layers(transformer) == 24 and list(transformer.peft_config) == [ADAPTER_NAME]
    assert torch.equal(transformer(**inputs, return_dict=False)[0], full)
    adapters.set_relight(first, 0.0)
    torch.testing.assert_close(transformer(**inputs, return_dict=False)[0], plain)

    adapters.set_relight(second, 1.0)  # B = 0: back to the plain model
    assert count_lora_layers(transformer) == 24
    torch.testing.assert_close(transformer(**inputs, return_dict=False)[0], plain)


def test_peft_folder_matches_native_ckpt(tmp_path: Path) -> None:
    reference = build_pipeline("tiny").transformer
    lora = _native_lora(reference, zero_b=False)
    torch.save({"state_dict": lora}, tmp_path / "relighting_lora.ckpt")
    folder = tmp_path / "relighting_lora"
    folder.mkdir()
    peft_keys = {"base_model.model." + k.replace(".default.", "."): v for k, v in lora.items()}
    save_file(peft_keys, folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text(json.dumps({"r": RANK, "lora_alpha": NATIVE_LORA_ALPHA}))

    a, b = build_pipeline("tiny").transformer, build_pipeline("tiny").transformer
    _relight(a, tmp_path / "relighting_lora.ckpt", scale=0.5)
    _relight(b, folder, scale=0.5)
    inputs = _transformer_inputs()
    assert torch.equal(a(**inputs, return_dict=False)[0], b(**inputs, return_dict=False)[0])


def test_bf16_model_gets_bf16_lora_weights(tmp_path: Path) -> None:
    transformer = build_pipeline("tiny").transformer.to(torch.bfloat16)
    torch.save({"state_dict": _native_lora(transformer, zero_b=False)}, tmp_path / "l.ckpt")
    _relight(transformer, tmp_path / "l.ckpt")
    layer = transformer.get_submodule("blocks.1.ffn.net.2")
    assert layer.lora_A[ADAPTER_NAME].weight.dtype == torch.bfloat16


def test_bad_lora_files_are_clear_errors(tmp_path: Path) -> None:
    transformer = build_pipeline("tiny").transformer
    torch.save({"state_dict": {"blocks.0.self_attn.q.weight": torch.zeros(2, 2)}}, tmp_path / "plain.ckpt")
    with pytest.raises(WanimateError, match="not a LoRA state dict"):
        load_relight_lora(transformer, tmp_path / "plain.ckpt")
    torch.save({"state_dict": {"blocks.0.norm3.lora_A.default.weight": torch.zeros(2, 24)}}, tmp_path / "n.ckpt")
    with pytest.raises(WanimateError, match="not a Linear layer"):
        load_relight_lora(transformer, tmp_path / "n.ckpt")
    with pytest.raises(WanimateError, match="does not exist"):
        load_relight_lora(transformer, tmp_path / "missing.ckpt")
