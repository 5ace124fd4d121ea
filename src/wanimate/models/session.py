"""The model session: one loaded pipeline and every runtime change applied to it.

diffusers configures a pipeline with calls that change its objects in place
(``enable_model_cpu_offload``, ``set_attention_backend``, ``load_lora_weights``,
``enable_cache``, ...). A :class:`ModelSession` is the one place that makes those calls. It
records what it applied in its own attributes (never on the library's objects) and turns a
wanted :class:`Runtime` into the calls that get there from the current one: in place where
diffusers can undo a change (LoRA adapters, attention backend, step caches, the motion memo,
VAE tiling), by loading again from the session's source where it cannot (quantization,
offloading and the text encoder's placement, compilation). So a reused session gives exactly
what a fresh load with the same runtime gives, and constructing the generation engine changes
nothing (the engine builds its own sampler, so the pipeline's scheduler is never touched).

A session holds a Wan2.2-Animate model (``LoadedModel``) or a MultiAnimate one
(``MultiAnimateModel``: the Wan2.1-I2V base with its adapters, placed together).

The session loads lazily, on the first :meth:`ModelSession.pipeline_for`, so the server can
keep one per GPU slot and reuse it while jobs ask for the same weights.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.models.adapters import Adapters
from wanimate.models.caching import CacheOptions, StepCache
from wanimate.models.memory import MemoryOptions, apply_memory_options, configure_vae, needs_host_load
from wanimate.models.modes import DTYPES, check_dtype

log = logging.getLogger("wanimate")


@dataclass(frozen=True)
class Runtime:
    """Everything a session applies to its pipeline; a session with runtime R equals a fresh load given R.

    ``relight`` is the relighting LoRA's strength (0: off); ``distill`` a step-distill LoRA file
    (or ``None``) at ``distill_scale``.
    """

    memory: MemoryOptions = field(default_factory=MemoryOptions)
    attention: str = "native"
    compile: bool = False
    cache: CacheOptions = field(default_factory=CacheOptions)
    motion_memo: bool = True
    relight: float = 0.0
    distill: str | None = None
    distill_scale: float = 1.0

    def placement(self) -> tuple[str, str, bool]:
        """The memory options that change the weights themselves or where they live (undone only by a reload)."""
        return self.memory.offload, self.memory.quantize, self.memory.text_encoder_cpu


# What a freshly loaded pipeline has: nothing applied but its placement (set on first use). Its
# attention processors name no backend (""), so the first use names one on each of them.
FRESH = Runtime(attention="", motion_memo=False)


@dataclass(frozen=True)
class SessionKey:
    """What a session loads: equal keys, interchangeable sessions."""

    weights: str
    base: str | None
    dtype: str
    device: str
    model: str = "animate"  # or "multianimate"
    adapter: str | None = None  # multianimate: the checkpoint (--adapter)


class ModelSession:
    """Owns one loaded Wan-Animate pipeline and the runtime changes applied to it.

    ``ModelSession(weights, dtype=..., device=..., base=...)`` loads on first use and can load
    again when a change cannot be undone in place. :meth:`wrap` adopts an already loaded model
    (tests, benchmarks); it cannot reload, so asking it for such a change is an error.
    """

    def __init__(
        self,
        weights: str,
        *,
        dtype: str = "bf16",
        device: str | torch.device = "cpu",
        base: str | None = None,
        model: str = "animate",
        adapter: str | None = None,
    ) -> None:
        check_dtype(dtype)
        self.key = SessionKey(str(weights), base, dtype, str(torch.device(device)), model, adapter)
        self.model: Any = None  # wanimate.models.loading.LoadedModel once loaded
        self.loads = 0
        self.runtime: Runtime | None = None  # None: freshly loaded, nothing applied yet
        self._reloadable = True
        self._characters: int | None = None
        self._loaded_quantize: str | None = None  # what the loader quantized to (None: handed in already loaded)
        self.stored_quantization = "none"  # the transformer's quantization as loaded, before any runtime
        self._adapters: Adapters | None = None
        self._cache: StepCache | None = None

    @classmethod
    def wrap(cls, model: Any, *, dtype: str, device: str | torch.device, weights: str | None = None) -> ModelSession:
        """A session around an already loaded ``LoadedModel`` or ``MultiAnimateModel`` nothing has changed yet."""
        kind = "multianimate" if hasattr(model, "adapters") else "animate"
        adapter = model.adapter_name if kind == "multianimate" else None
        session = cls(weights or model.source, dtype=dtype, device=device, model=kind, adapter=adapter)
        session._adopt(model)
        session._reloadable = False
        return session

    @property
    def device(self) -> torch.device:
        return torch.device(self.key.device)

    @property
    def pipeline(self) -> Any:
        if self.model is None:
            raise RuntimeError("the session has not loaded its model yet; call pipeline_for(runtime)")
        return self.model.pipeline

    @property
    def step_cache(self) -> StepCache | None:
        """The step cache in use (its hit counts), or ``None``."""
        return self._cache

    def loaded(self, *, host_first: bool = False, characters: int | None = None, quantize: str = "none") -> Any:
        """The loaded model, loading it now if needed (on the host when ``host_first``).

        ``characters`` (MultiAnimate) is how many the materials hold: ``--adapter auto`` picks the
        smallest release that fits them, so a model loaded for fewer characters is loaded again.
        ``quantize`` (Wan2.2-Animate) is the quantization the loader applies layer by layer while the
        weights stream in; a model loaded with another one is loaded again.
        """
        auto = self._reloadable and self.key.adapter == "auto"
        if self.model is not None and characters is not None and auto and characters > self.model.max_characters:
            self.close()
        if self.model is not None and self._reloadable and quantize != self._loaded_quantize:
            self.close()
        if self.model is None:
            self._load(host_first, characters, quantize)
        return self.model

    def pipeline_for(self, runtime: Runtime) -> Any:
        """The pipeline with exactly ``runtime`` applied (loading or reloading when that is the only way)."""
        if self.model is not None and self.runtime is not None and self._needs_reload(self.runtime, runtime):
            if not self._reloadable:
                raise WanimateError(
                    "this model was prepared with other --offload/--quantize/--text-encoder-cpu/--compile options "
                    "and was handed in already loaded; load it again (ModelSession(weights, ...)) to change them"
                )
            log.info("reloading %s to change its memory or compile options", self.key.weights)
            self.close()
        if self.model is None:
            quantize = runtime.memory.quantize if self.key.model == "animate" else "none"
            host_first = needs_host_load(runtime.memory) or quantize != runtime.memory.quantize
            self._load(host_first, self._characters, quantize)
        try:
            if self.runtime is None:
                self._place(runtime.memory)
                self.runtime = dataclasses.replace(FRESH, memory=runtime.memory)
            self._apply(self.runtime, runtime)
        except BaseException:
            self.close()  # half applied: the record no longer says what the pipeline is, so let it go
            raise
        self.runtime = runtime
        return self.model.pipeline

    def close(self) -> None:
        """Drop the pipeline (and its memory); the next use loads again."""
        self.model = None
        self.runtime = None
        self._adapters = None
        self._cache = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------------------------------------

    def _load(self, host_first: bool, characters: int | None = None, quantize: str = "none") -> None:
        if not self._reloadable:
            raise WanimateError("this session's model was handed in already loaded and has been released")
        target = torch.device("cpu") if host_first else self.device
        dtype = getattr(torch, DTYPES[self.key.dtype])
        key = self.key
        if key.model == "multianimate":
            from wanimate.multianimate.loading import load_multianimate

            model = load_multianimate(
                key.weights, key.adapter or "auto", characters=characters, dtype=dtype, device=target, base=key.base
            )
        else:
            from wanimate.models.loading import load_model

            model = load_model(key.weights, dtype=dtype, device=target, base=key.base, quantize=quantize)
        self._characters = characters
        self._loaded_quantize = quantize
        self._adopt(model)
        self.loads += 1

    def _adopt(self, model: Any) -> None:
        from wanimate.models.memory import transformer_quantization

        self.model = model
        self.runtime = None
        # How the weights came: pre-quantized (or quantized while loading) weights hold that mode.
        self.stored_quantization = transformer_quantization(model.pipeline.transformer)
        self._adapters = Adapters(model.pipeline)
        self._cache = None

    def _place(self, memory: MemoryOptions) -> None:
        """Quantize and place (or offload) the pipeline; MultiAnimate's adapters go to the compute device."""
        apply_memory_options(self.model.pipeline, memory, self.device)
        if self.key.model == "multianimate":
            self.model.adapters.to(self.device)

    @staticmethod
    def _needs_reload(have: Runtime, want: Runtime) -> bool:
        if have.placement() != want.placement():
            return True
        # A compiled graph captured the attention backend and the cache hooks; compilation has no undo.
        return have.compile and (want != dataclasses.replace(have, **_in_place(want)) or not want.compile)

    def _apply(self, have: Runtime, want: Runtime) -> None:
        from wanimate.models.attention import compile_blocks, set_attention
        from wanimate.models.caching import remember_motion

        pipe = self.model.pipeline
        transformer = pipe.transformer
        if want.memory.vae_tiling != have.memory.vae_tiling:
            configure_vae(pipe, want.memory.vae_tiling)
        if want.attention != have.attention:
            set_attention(transformer, want.attention, self.device)
        assert self._adapters is not None
        relight = self.model.relight_lora if want.relight else None
        self._adapters.set_relight(relight, want.relight)
        self._adapters.set_distill(want.distill, want.distill_scale)
        if want.cache != have.cache:
            if self._cache is not None:
                self._cache.remove()
            self._cache = StepCache.enable(transformer, want.cache)
        if want.motion_memo != have.motion_memo:
            remember_motion(transformer, want.motion_memo)
        if want.compile and not have.compile:
            compile_blocks(transformer, self.device, fullgraph=want.cache.mode == "none")


def _in_place(want: Runtime) -> dict[str, Any]:
    """The fields a compiled session may still change in place: the LoRA adapters and VAE tiling."""
    return {
        "relight": want.relight,
        "distill": want.distill,
        "distill_scale": want.distill_scale,
        "memory": want.memory,
    }
