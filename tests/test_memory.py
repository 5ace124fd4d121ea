"""Memory modes keep the output within documented bounds (budget planning: test_memory_budget.py).

Bounds against the fp32 reference (tiny random model, 17 frames in two segments, 4 steps, frames in
[0, 1]; docs/performance.md): bf16 and int8 max |Δ| ≤ 0.3, mean ≤ 0.01; fp8 max ≤ 0.3, mean ≤ 0.02.
Placement-only modes (group offload, text encoder on CPU, VAE tiling below the tile size) are exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_runs import run_engine

from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.models.factory import build_pipeline, build_transformer, model_config
from wanimate.models.memory import quantize_transformer, weight_bytes

pytestmark = pytest.mark.usefixtures("one_thread")
SETTINGS = dict(steps=4, seed=3)


@pytest.fixture(scope="module")
def materials(tiny_materials):
    return tiny_materials


CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def reference(materials) -> np.ndarray:
    return run_engine(build_pipeline("tiny"), materials, **SETTINGS)


def _bf16_pipe():
    pipe = build_pipeline("tiny")
    pipe.transformer.to(torch.bfloat16)
    return pipe


@pytest.mark.parametrize(
    ("name", "make", "kw", "max_err", "mean_err"),
    [
        ("bf16", _bf16_pipe, dict(dtype="bf16"), 0.3, 0.01),
        ("fp8", lambda: build_pipeline("tiny"), dict(quantize="fp8"), 0.3, 0.02),
        ("int8", lambda: build_pipeline("tiny"), dict(quantize="int8"), 0.3, 0.01),
    ],
)
def test_lossy_modes_stay_within_bounds(materials, reference, name, make, kw, max_err, mean_err):
    pipe = make()
    out = run_engine(pipe, materials, **SETTINGS, **kw)
    err = np.abs(out - reference)
    assert 0 < err.max() <= max_err, name
    assert err.mean() <= mean_err, name


@pytest.mark.parametrize("kw", [dict(offload="group"), dict(text_encoder_cpu=True), dict(vae_tiling=True)])
def test_placement_modes_are_exact(materials, reference, kw):
    pipe = build_pipeline("tiny")
    assert np.array_equal(run_engine(pipe, materials, **SETTINGS, **kw), reference)
    if kw.get("text_encoder_cpu"):
        assert pipe.text_encoder is not None and pipe.text_encoder.device.type == "cpu"
    if kw.get("vae_tiling"):
        assert pipe.vae.use_tiling


def test_fp8_stores_float8_and_keeps_skipped_modules():
    transformer = build_transformer(model_config("tiny"))
    quantize_transformer(transformer, "fp8", torch.float32)
    assert transformer.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert transformer.blocks[0].ffn.net[2].weight.dtype == torch.float8_e4m3fn
    # Wan's _skip_layerwise_casting_patterns and _keep_in_fp32_modules stay in the compute dtype.
    assert transformer.patch_embedding.weight.dtype == torch.float32
    assert transformer.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert transformer.dtype == torch.float32  # what the engine casts its inputs to


def test_int8_shrinks_the_quantized_layers_four_fold():
    """mid: the block and face-adapter linears go to int8 (+ per-row scales); the rest stays fp32."""
    transformer = build_transformer(model_config("mid"))
    before_blocks = weight_bytes(transformer.blocks) + weight_bytes(transformer.face_adapter)
    before = weight_bytes(transformer)
    quantize_transformer(transformer, "int8", torch.float32)
    after_blocks = weight_bytes(transformer.blocks) + weight_bytes(transformer.face_adapter)
    assert before_blocks / after_blocks >= 3.5
    assert before / weight_bytes(transformer) >= 1.5  # mid's fp32 motion encoder (36% of it) caps the total


def test_unknown_modes_are_user_errors():
    with pytest.raises(WanimateError, match="--quantize"):
        GenerateSettings(quantize="int4").validate()
    with pytest.raises(WanimateError, match="--offload"):
        GenerateSettings(offload="disk").validate()
    with pytest.raises(WanimateError, match="--vram-budget"):
        GenerateSettings(vram_budget=0).validate()
    with pytest.raises(WanimateError, match="--ram-budget"):
        GenerateSettings(ram_budget=-1).validate()
