"""Memory budgets: pick quantization and offload from sizes computed before any weight is read.

``--vram-budget GB`` and ``--ram-budget GB`` are resolved here into concrete memory options. The sizes
come from the configs alone: the DiT's bytes under each quantization mode are counted on a meta-device
skeleton quantized the same way the loader will quantize it (so they are exact), the encoders' from
their checkpoint headers (or parameter counts). Activations and the VAE decode are estimates (below).

Candidates are tried from fastest to leanest and the first that fits every given budget wins. When none
fits, the error names the smallest budget that would work, so the user can act on one line.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import torch

from wanimate.errors import WanimateError
from wanimate.models.memory import GIB, MemoryOptions
from wanimate.models.sizes import ModelSizes

log = logging.getLogger("wanimate")

# What stays on the GPU under group (leaf) offloading with streams: the layers in flight plus the
# small non-block modules; a generous fixed allowance.
GROUP_RESIDENT_GIB = 1.0
# Allocator slack and CUDA context.
OVERHEAD_GIB = 1.0
# The host process before any weight: Python, torch, diffusers, transformers, torchao (measured 0.6 GiB)
# plus allocator slack.
HOST_RUNTIME_GIB = 1.0


def activation_gib(
    dim: int, ffn_dim: int, height: int, width: int, frames: int, batch: int, bytes_per: int = 2
) -> float:
    """Peak DiT activations: hidden states, q/k/v/out and the FFN's inner tensor for every token.

    Tokens = (latent frames + reference frame) x (H/16) x (W/16); attention is
    assumed memory-efficient (no tokens² matrix), which SDPA/flash give on CUDA and SDPA on CPU.
    """
    tokens = (frames // 4 + 2) * (height // 16) * (width // 16)
    return tokens * (6 * dim + ffn_dim) * bytes_per * batch / GIB


def vae_decode_gib(height: int, width: int, tiled: bool) -> float:
    """Wan VAE decode peak: its widest stage keeps ~384 channels x 4 frames at full resolution, x3 for
    the causal cache and the in/out of a conv; tiling bounds it to 256x256 tiles (plus the stitched output)."""
    side = 256 * 256 if tiled else height * width
    return (side * 4 * 384 * 2 * 3 + height * width * 3 * 81 * 4) / GIB


@dataclass(frozen=True)
class Workload:
    height: int
    width: int
    frames: int
    batch: int  # 2 with batched CFG


@dataclass(frozen=True)
class MemoryPlan:
    options: MemoryOptions
    vram_gib: float
    ram_gib: float
    explanation: str


def candidates(device: torch.device) -> list[MemoryOptions]:
    """Plans from fastest to leanest; the first that fits wins.

    On a CPU there is nothing to offload to and int8 has CPU kernels, so only two plans exist.
    """
    if device.type == "cpu":
        return [MemoryOptions(), MemoryOptions(quantize="int8", vae_tiling=True)]
    lean = dict(quantize="fp8", text_encoder_cpu=True, vae_tiling=True)
    return [
        MemoryOptions(),
        MemoryOptions(text_encoder_cpu=True),
        MemoryOptions(**lean),
        MemoryOptions(offload="model", **lean),
        MemoryOptions(offload="group", **lean),
        MemoryOptions(offload="sequential", **lean),
    ]


_OFFLOAD_WORDS = {
    "model": "one model on the GPU at a time",
    "group": "group offload (layers streamed to the GPU with CUDA streams)",
    "sequential": "one layer at a time without prefetch (slowest)",
}


def describe(options: MemoryOptions) -> str:
    """The plan in words, as the budget log line and error show it."""
    parts = ["full-precision DiT" if options.quantize == "none" else f"{options.quantize} DiT"]
    if options.offload != "none":
        parts.append(_OFFLOAD_WORDS[options.offload])
    if options.text_encoder_cpu:
        parts.append("text encoder on the CPU")
    if options.vae_tiling:
        parts.append("tiled VAE decode")
    return ", ".join(parts)


def estimate_vram_gib(options: MemoryOptions, sizes: ModelSizes, work: Workload) -> float:
    """Peak GPU memory of one plan: resident weights + the larger of DiT activations and VAE decode."""
    dit = sizes.dit[options.quantize] / GIB
    text = 0.0 if options.text_encoder_cpu else sizes.text_encoder / GIB
    image, vae_w = sizes.image_encoder / GIB, sizes.vae / GIB
    act = activation_gib(sizes.dim, sizes.ffn_dim, work.height, work.width, work.frames, work.batch, sizes.act_bytes)
    vae = vae_decode_gib(work.height, work.width, options.vae_tiling)
    if options.offload == "none":
        return dit + text + image + vae_w + max(act, vae) + OVERHEAD_GIB
    if options.offload == "model":
        # One component resident at a time: the DiT while denoising, the VAE while decoding.
        return max(dit + act, vae_w + vae, text, image) + OVERHEAD_GIB
    resident = GROUP_RESIDENT_GIB if options.offload == "group" else GROUP_RESIDENT_GIB / 4
    return resident + vae_w + max(act, vae) + OVERHEAD_GIB


def estimate_ram_gib(options: MemoryOptions, sizes: ModelSizes, work: Workload, device: torch.device) -> float:
    """Peak host memory of one plan.

    The encoders and the VAE are always read on the host first. The DiT streams onto the device and
    costs the host one tensor in flight, unless it lives on the host (CPU compute, or offloaded).
    Group offloading with streams pins a copy of every offloaded weight before dropping the original,
    so it needs those weights twice at setup. On a CPU the activations and the VAE decode are host
    memory too.
    """
    encoders = (sizes.text_encoder + sizes.image_encoder + sizes.vae) / GIB
    dit = sizes.dit[options.quantize] / GIB
    transient = sizes.dit_load_transient / GIB
    if device.type == "cpu":
        act = activation_gib(
            sizes.dim, sizes.ffn_dim, work.height, work.width, work.frames, work.batch, sizes.act_bytes
        )
        work_gib = max(act, vae_decode_gib(work.height, work.width, options.vae_tiling))
        return HOST_RUNTIME_GIB + encoders + dit + transient + work_gib
    if options.offload == "none":
        return HOST_RUNTIME_GIB + encoders + transient
    if options.offload == "group":
        pinned = dit + sizes.image_encoder / GIB + (0.0 if options.text_encoder_cpu else sizes.text_encoder / GIB)
        return HOST_RUNTIME_GIB + encoders + dit + pinned + transient
    return HOST_RUNTIME_GIB + encoders + dit + transient


def plan_for_budget(
    sizes: ModelSizes,
    work: Workload,
    device: torch.device,
    *,
    vram_budget: float | None = None,
    ram_budget: float | None = None,
) -> MemoryPlan:
    """The fastest plan within every given budget (GB); none fitting is one error line naming what would."""
    device = torch.device(device)
    if device.type == "cpu" and vram_budget is not None:
        log.warning("--vram-budget has no effect on cpu (there is no GPU memory to fit); planning for RAM only")
        vram_budget = None
    plans = []
    for options in candidates(device):
        if sizes.stored != "none" and options.quantize != "none":
            options = replace(options, quantize=sizes.stored)  # pre-quantized weights load as stored
        vram = estimate_vram_gib(options, sizes, work) if device.type != "cpu" else 0.0
        plans.append(MemoryPlan(options, vram, estimate_ram_gib(options, sizes, work, device), describe(options)))
    for plan in plans:
        if (vram_budget is None or plan.vram_gib <= vram_budget) and (ram_budget is None or plan.ram_gib <= ram_budget):
            return plan
    raise WanimateError(_unmet(plans, vram_budget, ram_budget, work))


def _unmet(plans: list[MemoryPlan], vram: float | None, ram: float | None, work: Workload) -> str:
    """One line: the budget(s) asked for and the smallest that works (given the other one, if any)."""
    size = f"{work.width}x{work.height}, {work.frames} frames"
    asked = " and ".join(f"--{k}-budget {v:g}" for k, v in (("vram", vram), ("ram", ram)) if v is not None)
    fit_vram = [p for p in plans if vram is None or p.vram_gib <= vram]
    fit_ram = [p for p in plans if ram is None or p.ram_gib <= ram]
    if ram is not None and fit_vram:
        best = min(fit_vram, key=lambda p: p.ram_gib)
        need = f"--ram-budget {_up(best.ram_gib)}"
    elif vram is not None and fit_ram:
        best = min(fit_ram, key=lambda p: p.vram_gib)
        need = f"--vram-budget {_up(best.vram_gib)}"
    else:
        best = min(plans, key=lambda p: (p.vram_gib, p.ram_gib))
        need = f"--vram-budget {_up(best.vram_gib)} --ram-budget {_up(best.ram_gib)}"
    return f"no memory plan fits {asked} at {size}; the smallest that works is {need} ({best.explanation})"


def _up(gib: float) -> str:
    return f"{math.ceil(gib * 10) / 10:.1f}"
