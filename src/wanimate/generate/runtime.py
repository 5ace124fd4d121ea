"""From generation settings to a prepared model: which session, which runtime, resolved once per call.

``generate`` asks for a model through :func:`prepare`: it loads the session's weights if needed
(on the host when they will be quantized or offloaded there), resolves ``--vram-budget`` into
concrete memory options from the loaded DiT's size, decides the relighting strength for the
materials' mode (Wan2.2-Animate) or checks the characters against the checkpoint (MultiAnimate),
and has the session apply the resulting :class:`Runtime`. The session makes the changes and keeps
the record; nothing here touches the pipeline.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.models.caching import CacheOptions
from wanimate.models.hub import DEFAULT_REPO
from wanimate.models.memory import MemoryOptions, needs_host_load, plan_for_budget
from wanimate.models.session import ModelSession, Runtime, SessionKey

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


def resolve_vram_budget(
    settings: GenerateSettings, transformer: torch.nn.Module, height: int, width: int
) -> GenerateSettings:
    """Replace ``vram_budget`` by the memory options it picks (logged), sized from the loaded DiT."""
    if settings.vram_budget is None:
        return settings
    config = transformer.config
    plan = plan_for_budget(
        settings.vram_budget,
        dit_params=sum(p.numel() for p in transformer.parameters()),
        dim=config.num_attention_heads * config.attention_head_dim,
        ffn_dim=config.ffn_dim,
        height=height,
        width=width,
        frames=settings.segment_frames,
        guidance=settings.guidance,
        batch_cfg=settings.batch_cfg,
    )
    o = plan.options
    log.warning(
        "--vram-budget %.1f GB: picked offload=%s quantize=%s text-encoder-cpu=%s vae-tiling=%s (%s, ~%.1f GiB)",
        settings.vram_budget,
        o.offload,
        o.quantize,
        o.text_encoder_cpu,
        o.vae_tiling,
        plan.explanation,
        plan.estimate_gib,
    )
    return dataclasses.replace(
        settings,
        vram_budget=None,
        offload=o.offload,
        quantize=o.quantize,
        text_encoder_cpu=o.text_encoder_cpu,
        vae_tiling=o.vae_tiling,
    )


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

    Returns the settings with the VRAM budget resolved, and what identifies the model in the resume
    key (its resolved source and layout, the relighting strength or the MultiAnimate checkpoint);
    the session's pipeline is then exactly what a fresh load with those settings would give.
    """
    host_first = needs_host_load(memory_options(settings)) or settings.vram_budget is not None
    if session.key.model == "multianimate":
        model = session.loaded(host_first=host_first, characters=materials.characters)
        model.check_characters(materials.characters)
        relight = 0.0
        identity = {"model": "multianimate", "adapter": model.adapter_source}
    else:
        model = session.loaded(host_first=host_first)
        relight = resolve_relight(settings, model, materials.mode)
        identity = {"relight": relight}
    settings = resolve_vram_budget(settings, model.pipeline.transformer, materials.height, materials.width)
    session.pipeline_for(runtime_for(settings, relight))
    return settings, {"weights": model.source, "layout": model.layout, **identity}
