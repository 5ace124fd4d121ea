"""Fitting the 14B model into less memory: offloading, weight quantization, VAE tiling, a VRAM planner.

Everything here goes through diffusers' and torchao's own mechanisms, so the
numerics are theirs: fp8 is *storage* only (weights are upcast layer by layer to
the compute dtype right before use, skipping the modules Wan marks as
precision-critical), int8 is torchao's weight-only quantization of the
transformer's linear layers. The order matters and is fixed by
:func:`apply_memory_options`: quantize on the host first, then place or offload,
so a 14B model never has to fit on the GPU unquantized.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from wanimate.errors import WanimateError
from wanimate.generate.settings import OFFLOAD_MODES, QUANTIZE_MODES

log = logging.getLogger("wanimate")

GIB = 2**30


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Storage bytes of a tensor, looking inside tensor subclasses (torchao keeps int8 data + scales)."""
    if hasattr(tensor, "__tensor_flatten__") and type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        names, _ = tensor.__tensor_flatten__()
        return sum(tensor_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes held by a module's parameters and buffers as stored (after quantization)."""
    return sum(tensor_bytes(t) for t in module.parameters()) + sum(tensor_bytes(t) for t in module.buffers())


def _quantizable_linear(module: torch.nn.Module, name: str) -> bool:
    """The transformer blocks' and face adapters' linears: 98% of the 14B weights, and safe to quantize.

    Embedders, the output projection and norms stay in the compute dtype, as the
    model's ``_skip_layerwise_casting_patterns`` asks for fp8.
    """
    return isinstance(module, torch.nn.Linear) and name.startswith(("blocks.", "face_adapter."))


def quantize_transformer(transformer: torch.nn.Module, mode: str, compute_dtype: torch.dtype) -> None:
    """fp8 storage with layerwise upcasting, or torchao int8 weight-only; ``none`` leaves it alone."""
    if mode == "none":
        return
    if mode == "fp8":
        transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)
        return
    if mode == "int8":
        try:
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
        except ImportError:
            raise WanimateError("--quantize int8 needs torchao: pip install 'wanimate[gpu]' or torchao") from None
        quantize_(transformer, Int8WeightOnlyConfig(), filter_fn=_quantizable_linear)
        return
    raise WanimateError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, not {mode!r}")


def apply_offload(pipe: torch.nn.Module, mode: str, device: torch.device) -> None:
    """Hand weight placement to diffusers: whole models, groups of layers (CUDA streams), or single layers.

    Offloading moves weights between host and ``device``; on a CPU device there is
    nothing to move, so ``model`` and ``sequential`` are skipped with a warning.
    ``group`` still installs its hooks there (host to host), which is how its code
    path is tested without a GPU.
    """
    if mode == "none":
        pipe.to(device)
        return
    if mode not in OFFLOAD_MODES:
        raise WanimateError(f"--offload must be one of {', '.join(OFFLOAD_MODES)}, not {mode!r}")
    if mode == "group":
        streams = device.type == "cuda"
        for name in ("transformer", "text_encoder", "image_encoder"):
            component = getattr(pipe, name, None)
            if component is None:
                continue
            if hasattr(component, "enable_group_offload"):
                component.enable_group_offload(
                    onload_device=device, offload_type="leaf_level", use_stream=streams, record_stream=streams
                )
            else:
                from diffusers.hooks import apply_group_offloading

                apply_group_offloading(component, onload_device=device, offload_type="leaf_level", use_stream=streams)
        pipe.vae.to(device)
        return
    if device.type == "cpu":
        log.warning("--offload %s does nothing on CPU (weights already live in host memory); skipped", mode)
        pipe.to(device)
        return
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)


def configure_vae(pipe: torch.nn.Module, tiling: bool) -> None:
    """Tiled decode bounds the VAE's activation peak by the tile, not the frame (seams are blended)."""
    if tiling:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()


@dataclass(frozen=True)
class MemoryOptions:
    offload: str = "none"
    quantize: str = "none"
    text_encoder_cpu: bool = False
    vae_tiling: bool = False


def apply_memory_options(pipe: torch.nn.Module, options: MemoryOptions, device: torch.device) -> None:
    """Quantize, then place: the pipeline must still be on the host when this is called with offload or quantize."""
    compute = pipe.transformer.dtype
    if compute == torch.float8_e4m3fn:
        raise WanimateError("the transformer is already stored in fp8; load it in bf16/fp32 to quantize")
    quantize_transformer(pipe.transformer, options.quantize, compute)
    text_encoder = pipe.text_encoder if options.text_encoder_cpu else None
    if text_encoder is not None:
        pipe.text_encoder = None  # keep it out of offload sequences and .to(device)
    try:
        apply_offload(pipe, options.offload, device)
    finally:
        if text_encoder is not None:
            pipe.text_encoder = text_encoder.to("cpu")
    configure_vae(pipe, options.vae_tiling)


def needs_host_load(options: MemoryOptions) -> bool:
    """Whether the weights must be loaded on the host first (to be quantized or offloaded there)."""
    return options.offload != "none" or options.quantize != "none" or options.text_encoder_cpu


# Components of Wan2.2-Animate-14B other than the DiT, in parameters (umT5-XXL encoder, CLIP ViT-H/14, Wan2.1 VAE).
TEXT_ENCODER_PARAMS = 5.68e9
IMAGE_ENCODER_PARAMS = 0.63e9
VAE_PARAMS = 0.127e9
# What stays on the GPU under group (leaf) offloading with streams: the layers in flight plus the
# small non-block modules; a generous fixed allowance.
GROUP_RESIDENT_GIB = 1.0
# Allocator slack and CUDA context.
OVERHEAD_GIB = 1.0


def transformer_params(config: dict) -> int:
    """Exact parameter count of a WanAnimate DiT config, built on the meta device (no memory)."""
    from diffusers import WanAnimateTransformer3DModel

    with torch.device("meta"):
        model = WanAnimateTransformer3DModel(**config)
    return sum(p.numel() for p in model.parameters())


def activation_gib(
    dim: int, ffn_dim: int, height: int, width: int, frames: int, batch: int, bytes_per: int = 2
) -> float:
    """Peak DiT activations: hidden states, q/k/v/out and the FFN's inner tensor for every token.

    Tokens = (latent frames + reference frame) x (H/16) x (W/16); attention is
    assumed memory-efficient (no tokens² matrix), which SDPA/flash give on CUDA.
    """
    tokens = (frames // 4 + 2) * (height // 16) * (width // 16)
    return tokens * (6 * dim + ffn_dim) * bytes_per * batch / GIB


def vae_decode_gib(height: int, width: int, tiled: bool) -> float:
    """Wan VAE decode peak: its widest stage keeps ~384 channels x 4 frames at full resolution, x3 for
    the causal cache and the in/out of a conv; tiling bounds it to 256x256 tiles (plus the stitched output)."""
    side = 256 * 256 if tiled else height * width
    return (side * 4 * 384 * 2 * 3 + height * width * 3 * 81 * 4) / GIB


@dataclass(frozen=True)
class MemoryPlan:
    options: MemoryOptions
    estimate_gib: float
    explanation: str


def _plans() -> list[tuple[MemoryOptions, str]]:
    """Candidates from fastest to leanest; the first that fits wins."""
    return [
        (MemoryOptions(), "everything resident in bf16"),
        (MemoryOptions(text_encoder_cpu=True), "text encoder on CPU"),
        (MemoryOptions(quantize="fp8", text_encoder_cpu=True, vae_tiling=True), "fp8 DiT weights, text encoder on CPU"),
        (MemoryOptions(offload="model", quantize="fp8", text_encoder_cpu=True, vae_tiling=True),
         "fp8 DiT, one model on the GPU at a time"),
        (MemoryOptions(offload="group", quantize="fp8", text_encoder_cpu=True, vae_tiling=True),
         "fp8 DiT streamed layer by layer (group offload with CUDA streams)"),
        (MemoryOptions(offload="sequential", quantize="fp8", text_encoder_cpu=True, vae_tiling=True),
         "fp8 DiT, one layer at a time without prefetch (slowest)"),
    ]  # fmt: skip


def estimate_vram_gib(
    options: MemoryOptions, dit_params: int, dim: int, ffn_dim: int, height: int, width: int, frames: int, batch: int
) -> float:
    """Peak GPU memory of one plan: resident weights + the larger of DiT activations and VAE decode."""
    dit = dit_params * (1 if options.quantize != "none" else 2) / GIB
    text = 0.0 if options.text_encoder_cpu else TEXT_ENCODER_PARAMS * 2 / GIB
    others = (IMAGE_ENCODER_PARAMS + VAE_PARAMS) * 2 / GIB
    act = activation_gib(dim, ffn_dim, height, width, frames, batch)
    vae = vae_decode_gib(height, width, options.vae_tiling)
    if options.offload == "none":
        weights = dit + text + others
        return weights + max(act, vae) + OVERHEAD_GIB
    if options.offload == "model":
        # One component resident at a time: the DiT while denoising, the VAE while decoding.
        return max(dit + act, VAE_PARAMS * 2 / GIB + vae, text) + OVERHEAD_GIB
    resident = GROUP_RESIDENT_GIB if options.offload == "group" else GROUP_RESIDENT_GIB / 4
    return resident + VAE_PARAMS * 2 / GIB + max(act, vae) + OVERHEAD_GIB


def plan_for_budget(
    budget_gib: float,
    *,
    dit_params: int,
    dim: int,
    ffn_dim: int,
    height: int,
    width: int,
    frames: int,
    guidance: float,
    batch_cfg: bool = True,
) -> MemoryPlan:
    """The fastest combination whose estimate fits ``budget_gib``; the leanest one (with a warning) if none fits."""
    batch = 2 if guidance > 1 and batch_cfg else 1
    chosen = None
    for options, why in _plans():
        estimate = estimate_vram_gib(options, dit_params, dim, ffn_dim, height, width, frames, batch)
        chosen = MemoryPlan(options, estimate, why)
        if estimate <= budget_gib:
            return chosen
    assert chosen is not None
    log.warning(
        "no combination is estimated to fit %.1f GiB (leanest needs ~%.1f GiB); using it anyway",
        budget_gib,
        chosen.estimate_gib,
    )
    return chosen


def load_gguf_transformer(path: str | Path, config: str | Path, compute_dtype: torch.dtype) -> torch.nn.Module:
    """A GGUF-quantized DiT (city96/QuantStack-style, native Wan key names) through diffusers' GGUF support.

    Quantized tensors stay packed (Q8_0, Q4_K, ...) and are dequantized per layer to
    ``compute_dtype`` inside each forward, so VRAM holds the packed size. ``config``
    is a folder with the diffusers ``config.json`` of the transformer (offline: the
    hub's config is never fetched). Diffusers' Animate converter assumes the 512 px
    motion encoder of the real model.
    """
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise WanimateError("GGUF weights need the gguf package: pip install 'wanimate[gpu]' or gguf") from None
    from diffusers import GGUFQuantizationConfig, WanAnimateTransformer3DModel

    path = Path(path)
    if path.suffix != ".gguf" or not path.is_file():
        raise WanimateError(f"{path} is not a .gguf file")
    return WanAnimateTransformer3DModel.from_single_file(
        str(path),
        config=str(config),
        quantization_config=GGUFQuantizationConfig(compute_dtype=compute_dtype),
        torch_dtype=compute_dtype,
    ).eval()


def release_host_memory() -> None:
    """Give freed heap pages back to the OS (glibc ``malloc_trim``); a no-op elsewhere.

    The VAE and the 512² motion encoder allocate and free hundreds of MB per segment.
    glibc raises its mmap threshold after such frees, so later buffers come from the
    heap, fragment it, and the RSS of segment 2+ creeps above segment 1's. Trimming
    at each segment boundary keeps the peaks equal.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):
        return
