"""Quantizing while loading: every layout, tiny and mid, equals loading whole then quantizing (bit-exact).

The eager reference is what users did before: the diffusers folder through diffusers' own
``from_pretrained``, the other layouts through ``load_model`` unquantized; then the same quantizer
(``quantize_transformer``). Streaming must produce the very same tensors, hence the same outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from checkpoints import assert_same_tensors, outputs, put_in_cache, reference_pipeline, write_layouts
from diffusers import WanAnimateTransformer3DModel
from huggingface_hub import constants
from safetensors.torch import save_file

from wanimate.models import factory
from wanimate.models.loading import load_model, load_single_file_transformer, load_transformer
from wanimate.models.memory import quantize_transformer, transformer_quantization, weight_bytes
from wanimate.models.official_export import save_official_dit
from wanimate.models.random_weights import build_streamed_transformer
from wanimate.models.sizes import dit_sizes
from wanimate.models.streaming import FLOAT8, is_quantized_tensor, quantizable_linear

pytestmark = pytest.mark.usefixtures("one_thread")
BF16, CPU = torch.bfloat16, torch.device("cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    pipe = reference_pipeline()
    pipe.transformer.to(BF16)  # checkpoints ship bf16
    return write_layouts(pipe, tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize(
    ("which", "base", "mode"),
    [("official", None, "int8"), ("diffusers", None, "fp8"), ("hub", None, "int8"), ("comfy", "official", "fp8")],
)
def test_tiny_streamed_quantization_equals_load_then_quantize(tiny, hf_cache, which, base, mode) -> None:
    weights = str(tiny[which]) if which != "hub" else "Wan-AI/Wan2.2-Animate-14B-Diffusers"
    if which == "hub":
        put_in_cache(hf_cache, weights, tiny["diffusers"])
    kw = dict(dtype=BF16, progress=False, base=str(tiny[base]) if base else None)
    streamed = load_model(weights, quantize=mode, **kw)
    assert streamed.quantization == mode == transformer_quantization(streamed.pipeline.transformer)
    if which in ("diffusers", "hub"):
        eager = WanAnimateTransformer3DModel.from_pretrained(tiny["diffusers"] / "transformer", torch_dtype=BF16)
    else:
        eager = load_model(weights, **kw).pipeline.transformer
    quantize_transformer(eager, mode, BF16)
    assert_same_tensors(streamed.pipeline.transformer, eager)
    assert torch.equal(outputs(streamed.pipeline.transformer), outputs(eager))


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path / "hf" / "hub"


def test_quantized_layers_are_the_block_and_adapter_linears(tiny) -> None:
    t = load_model(str(tiny["diffusers"]), dtype=BF16, progress=False, quantize="int8").pipeline.transformer
    quantized = {n for n, m in t.named_modules() if isinstance(m, torch.nn.Linear) and is_quantized_tensor(m.weight)}
    assert quantized == {n for n, m in t.named_modules() if quantizable_linear(m, n)}
    assert all(n.startswith(("blocks.", "face_adapter.")) for n in quantized)
    assert t.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32  # _keep_in_fp32_modules
    assert t.proj_out.weight.dtype == BF16
    fp8 = load_model(str(tiny["diffusers"]), dtype=BF16, progress=False, quantize="fp8").pipeline.transformer
    assert fp8.blocks[0].attn1.to_q.weight.dtype == FLOAT8 and fp8.patch_embedding.weight.dtype == BF16
    assert fp8.dtype == BF16  # the compute dtype, as the engine casts its inputs


# --------------------------------------------------------------------------------------------- mid


@pytest.fixture(scope="module")
def mid(tmp_path_factory) -> dict[str, Path]:
    """The mid DiT (8 blocks of dim 512, the real 512 px motion encoder) in bf16, in each layout."""
    root = tmp_path_factory.mktemp("mid")
    transformer = factory.build_transformer(factory.model_config("mid"), seed=5).to(BF16)
    transformer.save_pretrained(root / "diffusers" / "transformer")
    off = save_official_dit(transformer, root / "official")
    save_file(dict(transformer.state_dict()), root / "single.safetensors")
    return {"diffusers": root / "diffusers", "official": off, "single": root / "single.safetensors"}


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_mid_streamed_quantization_equals_load_then_quantize(mid, mode) -> None:
    """Each layout streams to the same tensors as diffusers' ``from_pretrained`` followed by the quantizer."""
    eager = WanAnimateTransformer3DModel.from_pretrained(mid["diffusers"] / "transformer", torch_dtype=BF16)
    quantize_transformer(eager, mode, BF16)
    config = json.loads((mid["diffusers"] / "transformer" / "config.json").read_text())
    layouts = ("official", "diffusers", "single") if mode == "int8" else ("official",)
    for which in layouts:
        if which == "single":
            streamed = load_single_file_transformer(mid["single"], config, BF16, CPU, mode)
        else:
            streamed = load_transformer(mid[which], which, BF16, CPU, mode)[0]
        assert_same_tensors(streamed, eager)
    predicted, _ = dit_sizes(WanAnimateTransformer3DModel, config, BF16)
    assert weight_bytes(streamed) == predicted[mode]  # the planner's size, from the config alone


def test_random_full_config_builds_layer_by_layer_like_whole() -> None:
    """``random:`` quantized builds stream per-tensor draws; built whole from the same draws, then
    quantized, they are identical (shown on tiny; ``full`` is the same code at 17B parameters)."""
    cfg = factory.model_config("tiny")
    streamed = build_streamed_transformer(cfg, seed=3, dtype=BF16, quantize="int8")
    whole = build_streamed_transformer(cfg, seed=3, dtype=BF16)
    quantize_transformer(whole, "int8", BF16)
    assert_same_tensors(streamed, whole)
    other = build_streamed_transformer(cfg, seed=4, dtype=BF16)
    assert not torch.equal(other.blocks[0].attn1.to_q.weight, whole.blocks[0].attn1.to_q.weight.dequantize())
    loaded = load_model("random:tiny", dtype=BF16, quantize="int8", progress=False)
    assert loaded.quantization == "int8" and torch.isfinite(outputs(loaded.pipeline.transformer)).all()
