"""Pre-quantized folders (``wanimate convert --quantize``) and the relighting LoRA on quantized layers.

A pre-quantized folder must load to exactly what quantizing on load gives; asking it for another mode
or another compute dtype is one clear line. The LoRA stays a separate full-precision low-rank branch:
each targeted layer adds ``scale * (alpha / rank) * B A x`` to the quantized layer's own output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from checkpoints import assert_same_tensors, outputs, reference_pipeline, write_layouts
from diffusers import WanAnimateTransformer3DModel
from safetensors import safe_open

from wanimate.cli import main
from wanimate.errors import WanimateError
from wanimate.materials.synthetic import write_materials
from wanimate.models.convert import convert_weights
from wanimate.models.loading import load_model
from wanimate.models.lora import ADAPTER_NAME, NATIVE_LORA_ALPHA, apply_relight_lora
from wanimate.models.official import dit_diffusers_module_to_native
from wanimate.models.official_io import LORA_FILE
from wanimate.models.quantized import QUANTIZATION_KEY
from wanimate.models.streaming import FLOAT8, is_quantized_tensor

pytestmark = pytest.mark.usefixtures("one_thread")
BF16 = torch.bfloat16
RANK = 4


def native_lora(transformer, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random rank-4 LoRA weights on every Linear of the blocks, with the official native names."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, layer in transformer.named_modules():
        if name.startswith("blocks.") and isinstance(layer, torch.nn.Linear):
            native = dit_diffusers_module_to_native(name)
            state[f"{native}.lora_A.default.weight"] = torch.randn(RANK, layer.in_features, generator=g) * 0.1
            state[f"{native}.lora_B.default.weight"] = torch.randn(layer.out_features, RANK, generator=g) * 0.1
    return state


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    pipe = reference_pipeline()
    pipe.transformer.to(BF16)
    root = tmp_path_factory.mktemp("prequant")
    found = write_layouts(pipe, root)
    torch.save({"state_dict": native_lora(pipe.transformer)}, found["official"] / LORA_FILE)
    for mode in ("int8", "fp8"):
        found[mode] = convert_weights(found["official"], root / f"tiny-{mode}", quantize=mode, progress=False)
    return found


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_prequantized_folder_loads_exactly_like_quantizing_on_load(tiny, mode) -> None:
    config = json.loads((tiny[mode] / "transformer" / "config.json").read_text())
    assert config[QUANTIZATION_KEY] == {"mode": mode, "dtype": "bfloat16"}
    pre = load_model(str(tiny[mode]), dtype=BF16, progress=False)  # --quantize none: as stored
    assert pre.layout == "diffusers" and pre.quantization == mode and pre.relight_lora is not None
    again = load_model(str(tiny[mode]), dtype=BF16, progress=False, quantize=mode)  # the same mode is fine
    on_load = load_model(str(tiny["official"]), dtype=BF16, progress=False, quantize=mode)
    assert_same_tensors(pre.pipeline.transformer, on_load.pipeline.transformer)
    assert_same_tensors(again.pipeline.transformer, on_load.pipeline.transformer)
    assert torch.equal(outputs(pre.pipeline.transformer), outputs(on_load.pipeline.transformer))
    # On disk the block linears are one byte per weight (int8 data or fp8), the rest as loaded.
    with safe_open(tiny[mode] / "transformer" / "diffusion_pytorch_model.safetensors", "pt") as f:
        key = "blocks.0.ffn.net.0.proj." + ("_weight_qdata" if mode == "int8" else "weight")
        assert f.get_slice(key).get_dtype() == ("I8" if mode == "int8" else "F8_E4M3")
        assert f.get_slice("proj_out.weight").get_dtype() == "BF16"


def test_prequantized_int8_folder_is_plain_diffusers_torchao_too(tiny) -> None:
    """diffusers' own loader reads it (its TorchAO safetensors format), with the same outputs."""
    config = json.loads((tiny["int8"] / "transformer" / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "torchao"
    plain = WanAnimateTransformer3DModel.from_pretrained(tiny["int8"] / "transformer", torch_dtype=BF16)
    assert is_quantized_tensor(plain.blocks[0].attn1.to_q.weight)
    ours = load_model(str(tiny["int8"]), dtype=BF16, progress=False).pipeline.transformer
    assert torch.equal(outputs(plain), outputs(ours))


def test_diffusers_folder_gets_a_prequantized_copy_with_its_components_linked(tiny, tmp_path) -> None:
    out = convert_weights(tiny["diffusers"], tmp_path / "copy", quantize="int8", progress=False)
    vae = next((out / "vae").glob("*.safetensors"))
    assert vae.stat().st_ino == (tiny["diffusers"] / "vae" / vae.name).stat().st_ino  # hard link, no copy
    copied = load_model(str(out), dtype=BF16, progress=False)
    on_load = load_model(str(tiny["diffusers"]), dtype=BF16, progress=False, quantize="int8")
    assert_same_tensors(copied.pipeline.transformer, on_load.pipeline.transformer)


def test_bad_input_is_one_clear_line_and_leaves_nothing(tiny, tmp_path) -> None:
    cases = [
        (lambda: load_model(str(tiny["int8"]), dtype=BF16, progress=False, quantize="fp8"),
         "is pre-quantized to int8, so --quantize fp8 cannot apply"),
        (lambda: load_model(str(tiny["fp8"]), dtype=torch.float32, progress=False),
         "was quantized for bf16 compute; load it with --dtype bf16"),
        (lambda: convert_weights(tiny["int8"], tmp_path / "a", quantize="fp8", progress=False),
         "already pre-quantized to int8"),
        (lambda: convert_weights(tiny["diffusers"], tmp_path / "b", progress=False),
         "add --quantize int8|fp8"),
        (lambda: convert_weights(tiny["official"], tmp_path / "c", quantize="int4", progress=False),
         "--quantize must be one of none, fp8, int8"),
    ]  # fmt: skip
    for call, expected in cases:
        with pytest.raises(WanimateError) as err:
            call()
        assert expected in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_conflicting_quantize_on_the_command_line(tiny, tmp_path, capsys) -> None:
    out = tmp_path / "q"
    main(["convert", str(tiny["official"]), str(out), "--quantize", "int8"])
    assert f"wrote {out}" in capsys.readouterr().out
    materials = write_materials(tmp_path / "m", num_frames=9)
    args = ["generate", str(materials), "-o", str(tmp_path / "o.mp4"), "--weights", str(out), "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--quantize", "fp8"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and "pre-quantized to int8" in err
    assert not (tmp_path / "o.mp4").exists()


# ------------------------------------------------------------------------------ LoRA on quantized


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_relight_lora_is_a_full_precision_branch_on_quantized_layers(tiny, mode) -> None:
    model = load_model(str(tiny["official"]), dtype=BF16, progress=False, quantize=mode)
    transformer = model.pipeline.transformer
    plain_out = outputs(transformer)
    layers = ["blocks.0.attn1.to_q", "blocks.1.attn2.add_k_proj", "blocks.1.ffn.net.2"]
    x = {n: torch.randn(3, transformer.get_submodule(n).in_features, generator=torch.Generator().manual_seed(1))
         for n in layers}  # fmt: skip
    with torch.no_grad():
        before = {n: transformer.get_submodule(n)(x[n].to(BF16)) for n in layers}
    apply_relight_lora(transformer, model.relight_lora, scale=0.5)
    for name in layers:
        layer = transformer.get_submodule(name)
        weight = layer.base_layer.weight
        assert is_quantized_tensor(weight) if mode == "int8" else weight.dtype == FLOAT8  # base stays quantized
        a, b = layer.lora_A[ADAPTER_NAME].weight, layer.lora_B[ADAPTER_NAME].weight
        assert a.dtype == b.dtype == BF16  # the compute dtype, not the storage dtype
        with torch.no_grad():
            expected = before[name] + 0.5 * (NATIVE_LORA_ALPHA / RANK) * (x[name].to(BF16) @ a.T) @ b.T
            assert torch.equal(layer(x[name].to(BF16)), expected), name
    assert not torch.equal(outputs(transformer), plain_out)
    apply_relight_lora(transformer, model.relight_lora, scale=0.0)
    assert torch.equal(outputs(transformer), plain_out)
