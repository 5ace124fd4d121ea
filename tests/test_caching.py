"""Step caching with Wan-Animate's face adapters: diffusers' First Block Cache double-counts them, ours does not.

Error bounds (tiny random model, 17 frames in two segments, 8 steps, frames in [0, 1]), documented in
docs/performance.md: FBC at threshold 0.05 caches most steps with max |Δ| ≤ 0.25 and mean |Δ| ≤ 0.01;
TaylorSeer (interval 3, warmup 3) max ≤ 0.25, mean ≤ 0.01; threshold 0 changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
from diffusers.models.transformers.transformer_wan_animate import WanTransformerBlock
from engine_runs import run_engine

from wanimate.models.caching import _MOTION, FaceAwareBlockCache
from wanimate.models.factory import build_pipeline

pytestmark = pytest.mark.usefixtures("one_thread")
SETTINGS = dict(steps=8, seed=3)


@pytest.fixture(scope="module")
def materials(tiny_materials):
    return tiny_materials


@pytest.fixture(scope="module")
def reference(materials) -> np.ndarray:
    return run_engine(build_pipeline("tiny"), materials, **SETTINGS)


def _inputs() -> dict:
    g = torch.Generator().manual_seed(0)
    return dict(
        hidden_states=torch.randn(1, 36, 3, 4, 4, generator=g),
        timestep=torch.tensor([500.0]),
        encoder_hidden_states=torch.randn(1, 8, 32, generator=g),
        encoder_hidden_states_image=torch.randn(1, 257, 4, generator=g),
        pose_hidden_states=torch.randn(1, 16, 2, 4, 4, generator=g),
        face_pixel_values=torch.rand(1, 3, 5, 16, 16, generator=g) * 2 - 1,
        return_dict=False,
    )


def _twice(transformer) -> tuple[torch.Tensor, torch.Tensor]:
    """The same step twice: the second is cached (identical block-0 residual) and should repeat the first."""
    with torch.no_grad(), transformer.cache_context("cond"):
        return transformer(**_inputs())[0], transformer(**_inputs())[0]


@torch.no_grad()
def test_diffusers_first_block_cache_counts_face_adapters_twice():
    transformer = build_pipeline("tiny").transformer
    exact = transformer(**_inputs())[0]
    # diffusers 0.42 does not register the Animate block class; registering it is what enabling FBC takes.
    TransformerBlockRegistry.register(
        WanTransformerBlock,
        TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=None),
    )
    try:
        transformer.enable_cache(FirstBlockCacheConfig(threshold=0.5))
        first, cached = _twice(transformer)
    finally:
        TransformerBlockRegistry._registry.pop(WanTransformerBlock, None)
    assert torch.equal(first, exact)
    # The cached residual already holds the adapters' output and the adapters add it again.
    assert (cached - exact).abs().max() > 0.1 * exact.abs().mean()


def test_face_aware_cache_repeats_a_step_exactly():
    transformer = build_pipeline("tiny").transformer
    with torch.no_grad():
        exact = transformer(**_inputs())[0]
    cache = FaceAwareBlockCache(transformer, threshold=0.5)
    first, cached = _twice(transformer)
    assert cache.counts() == (1, 1)
    assert torch.equal(first, exact)
    assert (cached - exact).abs().max() <= 1e-5
    cache.remove()
    with torch.no_grad():
        assert torch.equal(transformer(**_inputs())[0], exact)


def test_threshold_zero_changes_nothing(materials, reference):
    pipe = build_pipeline("tiny")
    out = run_engine(pipe, materials, **SETTINGS, cache="fbc", cache_threshold=0.0)
    head = pipe.transformer.blocks[0]._diffusers_hook.hooks["wanimate_fbc_head"]
    assert (head.computed, head.cached) == (16, 0)
    assert np.array_equal(out, reference)


def test_first_block_cache_error_is_bounded(materials, reference):
    pipe = build_pipeline("tiny")
    out = run_engine(pipe, materials, **SETTINGS, cache="fbc", cache_threshold=0.05)
    head = pipe.transformer.blocks[0]._diffusers_hook.hooks["wanimate_fbc_head"]
    assert head.cached >= 8  # most of the 16 steps (2 segments x 8) skipped the tail
    assert head.computed >= 2  # every segment starts with a full step (the cache is reset)
    err = np.abs(out - reference)
    assert err.max() <= 0.25 and err.mean() <= 0.01


def test_taylorseer_error_is_bounded_and_restarts_every_segment(materials, reference):
    pipe = build_pipeline("tiny")
    seen: list[tuple[int, int]] = []

    def progress(event):
        if event.stage == "step":
            hook = pipe.transformer.blocks[0].attn1._diffusers_hook.hooks["taylorseer_cache"]
            seen.append((event.segment, hook.state_manager._state_cache["cond"].current_step))

    out = run_engine(pipe, materials, progress=progress, **SETTINGS, cache="taylorseer", cache_interval=3)
    err = np.abs(out - reference)
    assert 0 < err.max() <= 0.25 and err.mean() <= 0.01  # it really predicted some steps
    # The step counter restarts with every segment: the engine resets the cache between segments.
    assert seen == [(k, i) for k in range(2) for i in range(8)]


def test_motion_memo_is_exact_and_encodes_each_chunk_once_per_segment(materials):
    plain = run_engine(build_pipeline("tiny"), materials, **SETTINGS, motion_memo=False, guidance=2.0)
    pipe = build_pipeline("tiny")
    remembered = run_engine(pipe, materials, **SETTINGS, motion_memo=True, guidance=2.0)
    assert np.array_equal(plain, remembered)
    memo = pipe.transformer.motion_encoder._diffusers_hook.hooks[_MOTION]
    # 9-frame segments, batched CFG: 18 face frames = 5 chunks of 4; 8 steps reuse them 7 times each.
    assert memo.hits == 2 * 5 * 7
    assert memo.entries == []  # released after every segment's last step
