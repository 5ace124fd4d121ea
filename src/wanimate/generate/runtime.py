"""From generation settings to a prepared model: which session, which runtime, resolved once per call.

``generate`` asks for a model through :func:`prepare`: it resolves ``--vram-budget``/``--ram-budget``
into concrete memory options (from the weights' configs before loading when it can, so the chosen
quantization happens layer by layer while the weights stream in), loads the session's weights if
needed (on the host when they will be offloaded from there), decides the relighting strength for the
materials' mode (Wan2.2-Animate) or checks the characters against the checkpoint (MultiAnimate),
and has the session apply the resulting :class:`Runtime`. The session makes the changes and keeps
the record; nothing here touches the pipeline.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.models.budget import Workload, plan_for_budget
from wanimate.models.caching import CacheOptions
from wanimate.models.hub import DEFAULT_REPO
from wanimate.models.memory import MemoryOptions, needs_host_load, transformer_quantization
from wanimate.models.session import ModelSession, Runtime, SessionKey
from wanimate.models.sizes import ModelSizes

log = logging.getLogger("wanimate")


def memory_options(settings: GenerateSettings) -> MemoryOptions:
    return MemoryOptions(
        offload=settings.offload,
        quantize=settings.quantize,
        text_encoder_cpu=settings.text_encoder_cpu,
        vae_tiling=settings.vae_tiling,
    )


def _is_multianimate(settings: GenerateSettings) -> bool:
    from wanimate.multianimate.settings import MultiAnimateSettings

    return isinstance(settings, MultiAnimateSettings)


def session_key(settings: GenerateSettings) -> SessionKey:
    """What a session must hold for these settings: model, weights, adapter, base, dtype and the device."""
    model = "multianimate" if _is_multianimate(settings) else "animate"
    adapter = settings.adapter if model == "multianimate" else None
    device = str(settings.resolved_device())
    return SessionKey(settings.weights, settings.base, settings.dtype, device, model=model, adapter=adapter)


def session_for(settings: GenerateSettings) -> ModelSession:
    """A new (not yet loaded) session for these settings."""
    key = session_key(settings)
    return ModelSession(
        key.weights, dtype=key.dtype, device=key.device, base=key.base, model=key.model, adapter=key.adapter
    )


def engine_model(session: ModelSession) -> Any:
    """What the segment engine runs: the Wan-Animate pipeline, or the whole MultiAnimate model."""
    return session.model if session.key.model == "multianimate" else session.pipeline


def resolve_budget(settings: GenerateSettings, sizes: ModelSizes, height: int, width: int) -> GenerateSettings:
    """Replace ``vram_budget``/``ram_budget`` by the memory options they pick (logged), from ``sizes``.

    Called before loading when possible (sizes from the weights' configs), so the chosen quantization
    happens while the weights stream in. A budget no plan meets is a one-line error naming the smallest
    budget that works.
    """
    if not has_budget(settings):
        return settings
    batch = 2 if settings.guidance > 1 and settings.batch_cfg else 1
    plan = plan_for_budget(
        sizes,
        Workload(height=height, width=width, frames=settings.segment_frames, batch=batch),
        settings.resolved_device(),
        vram_budget=settings.vram_budget,
        ram_budget=settings.ram_budget,
    )
    o = plan.options
    asked = ", ".join(
        f"--{name}-budget {value:g} GB"
        for name, value in (("vram", settings.vram_budget), ("ram", settings.ram_budget))
        if value is not None
    )
    log.warning(
        "%s: picked offload=%s quantize=%s text-encoder-cpu=%s vae-tiling=%s (%s; estimated ~%.1f GiB VRAM, "
        "~%.1f GiB RAM)",
        asked,
        o.offload,
        o.quantize,
        o.text_encoder_cpu,
        o.vae_tiling,
        plan.explanation,
        plan.vram_gib,
        plan.ram_gib,
    )
    return dataclasses.replace(
        settings,
        vram_budget=None,
        ram_budget=None,
        offload=o.offload,
        quantize=o.quantize,
        text_encoder_cpu=o.text_encoder_cpu,
        vae_tiling=o.vae_tiling,
    )


def has_budget(settings: GenerateSettings) -> bool:
    return settings.vram_budget is not None or settings.ram_budget is not None


def settings_for_pipeline(
    settings: GenerateSettings, pipe: Any, height: int, width: int, stored: str | None = None
) -> GenerateSettings:
    """Settings made concrete for a loaded pipeline: budgets sized from it (if still unresolved), and
    ``quantize="none"`` on weights stored quantized (pre-quantized) read as their mode.

    ``stored`` is how the weights came (a model session records it at load); by default it is read
    from the transformer, which is right only before anything else quantized it.
    """
    if has_budget(settings):
        from wanimate.models.sizes import pipeline_sizes

        settings = resolve_budget(settings, pipeline_sizes(pipe, settings.torch_dtype), height, width)
    held = transformer_quantization(pipe.transformer) if stored is None else stored
    if settings.quantize == "none" and held != "none":
        return dataclasses.replace(settings, quantize=held)
    return settings


def resolve_relight(settings: GenerateSettings, model: object, mode: str) -> float:
    """The relighting LoRA scale to use: 0 when off. On by default in replace mode when the weights carry it."""
    wanted = settings.relight if settings.relight is not None else mode == "replace"
    if not wanted:
        return 0.0
    if model.relight_lora is None:  # type: ignore[attr-defined]
        if settings.relight:
            raise WanimateError(
                f"--relight needs relighting_lora.ckpt, which the weights {model.source} do not carry; "  # type: ignore[attr-defined]
                f"use the official {DEFAULT_REPO} weights or pass --no-relight"
            )
        log.warning(
            "replace mode without the relighting LoRA (not in %s): colours may not match the scene",
            model.source,  # type: ignore[attr-defined]
        )
        return 0.0
    return settings.relight_scale


def runtime_for(settings: GenerateSettings, relight: float) -> Runtime:
    """The runtime these (budget-resolved) settings ask of the model."""
    return Runtime(
        memory=memory_options(settings),
        attention=settings.attention,
        compile=settings.compile,
        cache=CacheOptions(mode=settings.cache, threshold=settings.cache_threshold, interval=settings.cache_interval),
        motion_memo=settings.motion_memo,
        relight=relight,
        distill=settings.distill_lora,
        distill_scale=settings.distill_scale,
    )


def prepare(session: ModelSession, settings: GenerateSettings, materials: Any) -> tuple[GenerateSettings, dict]:
    """Load (if needed) and configure ``session`` for ``settings`` on ``materials``.

    Returns the settings with the memory budgets resolved, and what identifies the model in the resume
    key (its resolved source and layout, the relighting strength or the MultiAnimate checkpoint);
    the session's pipeline is then exactly what a fresh load with those settings would give.
    """
    multianimate = session.key.model == "multianimate"
    if has_budget(settings) and session.model is None and not multianimate:
        from wanimate.models.sizes import weights_sizes

        # Sized from the configs before loading, so the chosen quantization happens while loading.
        sizes = weights_sizes(settings.weights, dtype=settings.torch_dtype, base=settings.base)
        settings = resolve_budget(settings, sizes, materials.height, materials.width)
    host_first = needs_host_load(memory_options(settings))
    if multianimate:
        # Its LoRA is merged into the loaded base, so MultiAnimate quantizes after loading (on the host).
        host_first = host_first or settings.quantize != "none" or has_budget(settings)
        model = session.loaded(host_first=host_first, characters=materials.characters)
        model.check_characters(materials.characters)
    else:
        model = session.loaded(host_first=host_first, quantize=settings.quantize)
    stored = session.stored_quantization
    settings = settings_for_pipeline(settings, model.pipeline, materials.height, materials.width, stored)
    if multianimate:
        relight = 0.0
        identity = {"model": "multianimate", "adapter": model.adapter_source}
    else:
        relight = resolve_relight(settings, model, materials.mode)
        identity = {"relight": relight}
    session.pipeline_for(runtime_for(settings, relight))
    return settings, {"weights": model.source, "layout": model.layout, **identity}
