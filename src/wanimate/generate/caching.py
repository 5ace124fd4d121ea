"""Step caching for Wan-Animate, made correct for its face adapters.

Diffusers' First Block Cache hooks the transformer *blocks*: block 0 decides
whether this step is close enough to the last fully computed one, and if so it
returns ``block0_out + tail_residual`` while every later block passes its input
through. The tail residual is "last block out − block 0 out", measured on a full
step. In ``WanAnimateTransformer3DModel.forward`` a face adapter is added after
blocks 0, 5, 10, … *outside* the blocks, so on a cached step the adapters still
run and add their output on top of a residual that already contains it: every
adapter counts twice (``tests/test_caching.py`` shows the error).

:class:`FaceAwareBlockCache` fixes it by treating "block i + the adapter after it"
as one unit: the tail residual is measured after the last unit (adapter
included), and on a cached step the adapters return zero. TaylorSeer is pointed
at the attention and FFN modules *inside* the blocks, so the adapters always see
the current hidden states and are never double-counted.

Every cache keeps per-denoise state, so :func:`reset_step_cache` must run at the
start of every segment (the engine does), or segment 2 would reuse segment 1's
last residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.hooks import HookRegistry, ModelHook, TaylorSeerCacheConfig
from diffusers.hooks.hooks import BaseState, StateManager

from wanimate.errors import WanimateError
from wanimate.generate.settings import CACHE_MODES

# diffusers' default TaylorSeer patterns (``^blocks.*attn``, full match) match no module of Wan, whose
# attentions are ``attn1``/``attn2``: left alone, TaylorSeer would silently cache nothing.
TAYLORSEER_MODULES = (r"blocks\.\d+\.attn1", r"blocks\.\d+\.attn2", r"blocks\.\d+\.ffn")
_HEAD = "wanimate_fbc_head"
_PASS = "wanimate_fbc_pass"
_ADAPTER = "wanimate_fbc_adapter"
_MOTION = "wanimate_motion_memo"


@dataclass(frozen=True)
class CacheOptions:
    """``threshold``: FBC's relative change of block 0's residual below which a step is cached.

    ``interval``: TaylorSeer computes fully every ``interval`` steps after ``warmup``
    full steps and extrapolates the attention outputs in between.
    """

    mode: str = "none"
    threshold: float = 0.05
    interval: int = 3
    warmup: int = 3


class _CacheState(BaseState):
    def __init__(self) -> None:
        super().__init__()
        self.head_output: torch.Tensor | None = None
        self.head_residual: torch.Tensor | None = None
        self.tail_residual: torch.Tensor | None = None
        self.skipping = False

    def reset(self) -> None:
        self.head_output = self.head_residual = self.tail_residual = None
        self.skipping = False


class _HeadHook(ModelHook):
    """On block 0: decides compute-or-cache; on a cached step adds the whole tail (blocks + adapters)."""

    _is_stateful = True

    def __init__(self, state: StateManager, threshold: float) -> None:
        super().__init__()
        self.state = state
        self.threshold = threshold
        self.computed = 0
        self.cached = 0

    def new_forward(self, module: torch.nn.Module, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = self.fn_ref.original_forward(hidden_states, *args, **kwargs)
        residual = out - hidden_states
        st: _CacheState = self.state.get_state()
        st.skipping = self._close_enough(st, residual)
        if st.skipping:
            self.cached += 1
            return out + st.tail_residual
        self.computed += 1
        st.head_output, st.head_residual = out, residual
        return out

    @torch.compiler.disable
    def _close_enough(self, st: _CacheState, residual: torch.Tensor) -> bool:
        if self.threshold <= 0 or st.head_residual is None or st.tail_residual is None:
            return False
        if st.head_residual.shape != residual.shape:
            return False
        change = (residual - st.head_residual).abs().mean() / st.head_residual.abs().mean().clamp_min(1e-12)
        return bool(change.item() < self.threshold)

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        self.state.reset()
        return module


class _UnitHook(ModelHook):
    """A block or adapter after the first: skipped on a cached step; the last unit records the tail."""

    _is_stateful = True

    def __init__(self, state: StateManager, is_tail: bool) -> None:
        super().__init__()
        self.state = state
        self.is_tail = is_tail

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        return module


class _PassHook(_UnitHook):
    """On blocks 1..n-1: identity on a cached step; the last unit records the tail residual."""

    def new_forward(self, module: torch.nn.Module, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        st: _CacheState = self.state.get_state()
        if st.skipping:
            return hidden_states
        out = self.fn_ref.original_forward(hidden_states, *args, **kwargs)
        if self.is_tail:
            st.tail_residual = out - st.head_output
        return out


class _AdapterHook(_UnitHook):
    """On a face adapter: zero on a cached step (its share is in the tail residual).

    The model adds the adapter's output to its input, so when this adapter is the
    last unit the tail ends at ``input + output``.
    """

    def new_forward(self, module: torch.nn.Module, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        st: _CacheState = self.state.get_state()
        if st.skipping:
            return hidden_states.new_zeros(())
        out = self.fn_ref.original_forward(hidden_states, *args, **kwargs)
        if self.is_tail:
            st.tail_residual = out.to(hidden_states.device) + hidden_states - st.head_output
        return out


class FaceAwareBlockCache:
    """First Block Cache whose cached residual spans the transformer blocks AND the face adapters."""

    def __init__(self, transformer: torch.nn.Module, threshold: float) -> None:
        blocks = transformer.blocks
        every = transformer.config.inject_face_latents_blocks
        adapters = transformer.face_adapter
        last = len(blocks) - 1
        adapter_after_last = last % every == 0
        self.state = StateManager(_CacheState)
        self.transformer = transformer
        self.head = _HeadHook(self.state, threshold)
        self._register(blocks[0], _HEAD, self.head)
        for index in range(1, len(blocks)):
            tail = index == last and not adapter_after_last
            self._register(blocks[index], _PASS, _PassHook(self.state, tail))
        for k, adapter in enumerate(adapters):
            self._register(adapter, _ADAPTER, _AdapterHook(self.state, adapter_after_last and k * every == last))
        HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()

    @staticmethod
    def _register(module: torch.nn.Module, name: str, hook: ModelHook) -> None:
        HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)

    def counts(self) -> tuple[int, int]:
        """(computed, cached) transformer forwards since the cache was enabled."""
        return self.head.computed, self.head.cached

    def remove(self) -> None:
        for module in self.transformer.modules():
            registry = getattr(module, "_diffusers_hook", None)
            if registry is None:
                continue
            for name in (_HEAD, _PASS, _ADAPTER):
                if name in registry.hooks:
                    registry.remove_hook(name, recurse=False)
        HookRegistry.check_if_exists_or_initialize(self.transformer).invalidate_child_registries_cache()


class _MotionMemo(ModelHook):
    """Remembers the motion encoder's output for the inputs it has seen since the last reset.

    ``WanAnimateTransformer3DModel.forward`` re-encodes the whole face video (512²
    crops, chunk by chunk) at every denoising step and for both CFG branches,
    although the face video does not change within a segment. Outputs are reused
    only for inputs that are *equal* to a remembered one, so this is exact.
    """

    _is_stateful = True

    def __init__(self, capacity: int = 32) -> None:
        super().__init__()
        self.capacity = capacity
        self.entries: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.hits = 0

    def new_forward(self, module: torch.nn.Module, face: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if not args and not kwargs:
            for seen, out in self.entries:
                if seen.shape == face.shape and seen.dtype == face.dtype and torch.equal(seen, face):
                    self.hits += 1
                    return out
        out = self.fn_ref.original_forward(face, *args, **kwargs)
        if not args and not kwargs and len(self.entries) < self.capacity:
            self.entries.append((face.clone(), out))
        return out

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        self.entries = []
        return module


def remember_motion(transformer: torch.nn.Module) -> _MotionMemo:
    """Encode each face chunk once per segment instead of once per step and CFG branch (exact)."""
    registry = HookRegistry.check_if_exists_or_initialize(transformer.motion_encoder)
    if _MOTION in registry.hooks:
        return registry.hooks[_MOTION]
    memo = _MotionMemo()
    registry.register_hook(memo, _MOTION)
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()
    return memo


def enable_step_cache(transformer: torch.nn.Module, options: CacheOptions) -> FaceAwareBlockCache | None:
    """Turn on the chosen cache; returns the FBC handle (``None`` for TaylorSeer or none)."""
    if options.mode == "none":
        return None
    if options.mode == "fbc":
        return FaceAwareBlockCache(transformer, options.threshold)
    if options.mode == "taylorseer":
        transformer.enable_cache(
            TaylorSeerCacheConfig(
                cache_interval=options.interval,
                disable_cache_before_step=options.warmup,
                taylor_factors_dtype=torch.float32,
                cache_identifiers=list(TAYLORSEER_MODULES),
            )
        )
        return None
    raise WanimateError(f"--cache must be one of {', '.join(CACHE_MODES)}, not {options.mode!r}")


def reset_step_cache(transformer: torch.nn.Module) -> None:
    """Forget every cached residual and step count: call before each segment's first step."""
    registry = getattr(transformer, "_diffusers_hook", None)
    if registry is not None:
        registry.reset_stateful_hooks(recurse=True)
