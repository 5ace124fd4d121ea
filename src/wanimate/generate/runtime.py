"""Applies the speed and memory settings to a loaded pipeline, once, in the only order that works.

Quantize (normally done already, layer by layer while loading; a pipeline passed in
unquantized is quantized here) → place or offload → attention backend → distill LoRA →
step cache → compile. A pipeline remembers what was applied, so ``generate``
can be called many times with the same model; asking for different options on
an already-prepared pipeline is refused rather than stacking hooks.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.generate.caching import CacheOptions, enable_step_cache, remember_motion
from wanimate.generate.settings import GenerateSettings
from wanimate.models.budget import Workload, plan_for_budget
from wanimate.models.memory import MemoryOptions, apply_memory_options, needs_host_load, transformer_quantization
from wanimate.models.sizes import ModelSizes

log = logging.getLogger("wanimate")


def memory_options(settings: GenerateSettings) -> MemoryOptions:
    return MemoryOptions(
        offload=settings.offload,
        quantize=settings.quantize,
        text_encoder_cpu=settings.text_encoder_cpu,
        vae_tiling=settings.vae_tiling,
    )


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


def settings_for_pipeline(settings: GenerateSettings, pipe: Any, height: int, width: int) -> GenerateSettings:
    """Settings made concrete for a loaded pipeline: budgets sized from it (if still unresolved), and
    ``quantize="none"`` on an already-quantized transformer (pre-quantized weights) read as its mode."""
    if has_budget(settings):
        from wanimate.models.sizes import pipeline_sizes

        settings = resolve_budget(settings, pipeline_sizes(pipe, settings.torch_dtype), height, width)
    held = transformer_quantization(pipe.transformer)
    if settings.quantize == "none" and held != "none":
        return dataclasses.replace(settings, quantize=held)
    return settings


def load_device(settings: GenerateSettings, device: torch.device) -> torch.device:
    """Where to load the weights: the host when they will be offloaded from there (quantizing is done
    layer by layer on the device as the weights stream in)."""
    return torch.device("cpu") if needs_host_load(memory_options(settings)) else device


def runtime_signature(settings: GenerateSettings) -> tuple[Any, ...]:
    """The options a prepared pipeline is committed to (changing them needs a fresh load)."""
    return (
        memory_options(settings),
        settings.attention,
        settings.compile,
        settings.cache,
        settings.cache_threshold,
        settings.cache_interval,
        settings.motion_memo,
    )


def place_pipeline(pipe: Any, settings: GenerateSettings, device: torch.device) -> None:
    """Quantize, place or offload, and pick the attention backend: the options every Wan model shares."""
    from wanimate.models.attention import set_attention

    apply_memory_options(pipe, memory_options(settings), device)
    set_attention(pipe.transformer, settings.attention, device)


def refuse_changed_runtime(applied: tuple[Any, ...], settings: GenerateSettings) -> None:
    if applied != runtime_signature(settings):
        raise WanimateError(
            "this model was prepared with other speed/memory options; load it again to change "
            "--offload/--quantize/--attention/--compile/--cache"
        )


def prepare_pipeline(pipe: Any, settings: GenerateSettings, device: torch.device) -> None:
    """Apply every speed/memory option of ``settings`` to ``pipe`` (a no-op when already applied)."""
    from wanimate.models.attention import compile_blocks
    from wanimate.models.distill import apply_distill_lora

    applied = getattr(pipe, "_wanimate_runtime", None)
    if applied is None:
        place_pipeline(pipe, settings, device)
        pipe._wanimate_runtime = runtime_signature(settings)
    else:
        refuse_changed_runtime(applied, settings)
    if settings.distill_lora is not None:
        apply_distill_lora(pipe, settings.distill_lora, settings.distill_scale)
    if applied is None:
        enable_step_cache(
            pipe.transformer,
            CacheOptions(mode=settings.cache, threshold=settings.cache_threshold, interval=settings.cache_interval),
        )
        if settings.motion_memo:
            remember_motion(pipe.transformer)
        if settings.compile:
            compile_blocks(pipe.transformer, device, fullgraph=settings.cache == "none")
