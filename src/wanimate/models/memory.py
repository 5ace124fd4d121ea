"""Fitting the 14B model into less memory: offloading, weight quantization, VAE tiling.

Everything here goes through diffusers' and torchao's own mechanisms, so the
numerics are theirs: fp8 is *storage* only (weights are upcast layer by layer to
the compute dtype right before use, skipping the modules Wan marks as
precision-critical), int8 is torchao's weight-only quantization of the
transformer's linear layers. The loader quantizes while it streams the weights in
(:mod:`wanimate.models.streaming`); :func:`quantize_transformer` does the same to a
model that is already loaded. The order is fixed by :func:`apply_memory_options`:
quantize first, then place or offload, so a 14B model never has to fit on the GPU
unquantized. Budgets are planned in :mod:`wanimate.models.budget`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.generate.settings import OFFLOAD_MODES
from wanimate.models.streaming import (
    FLOAT8,
    check_quantize,
    int8_config,
    is_quantized_tensor,
    quantizable_linear,
)

log = logging.getLogger("wanimate")

GIB = 2**30


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Storage bytes of a tensor, looking inside tensor subclasses (torchao keeps int8 data + scales)."""
    if is_quantized_tensor(tensor):
        names, _ = tensor.__tensor_flatten__()
        return sum(tensor_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def weight_bytes(module: torch.nn.Module) -> int:
    """Bytes held by a module's parameters and buffers as stored (after quantization)."""
    return sum(tensor_bytes(t) for t in module.parameters()) + sum(tensor_bytes(t) for t in module.buffers())


def transformer_quantization(transformer: torch.nn.Module) -> str:
    """How the transformer's quantizable linears are held now: ``none``, ``int8`` or ``fp8``.

    Read from the weights themselves, so a model quantized while loading, loaded from a
    pre-quantized folder or quantized here all answer the same way.
    """
    for name, module in transformer.named_modules():
        if quantizable_linear(module, name):
            if is_quantized_tensor(module.weight):
                return "int8"
            if module.weight.dtype == FLOAT8:
                return "fp8"
            return "none"
    return "none"


def quantize_transformer(transformer: torch.nn.Module, mode: str, compute_dtype: torch.dtype) -> None:
    """fp8 storage with layerwise upcasting, or torchao int8 weight-only; ``none`` leaves it alone.

    This quantizes a model that is already loaded (its full-precision weights are in memory);
    :func:`wanimate.models.loading.load_model` with ``quantize=`` does the same layer by layer while
    loading, with bit-identical results. A model already quantized to ``mode`` is left as it is.
    """
    check_quantize(mode)
    current = transformer_quantization(transformer)
    if mode in ("none", current):
        return
    if current != "none":
        raise WanimateError(f"the transformer is already quantized to {current}; load it again to use {mode}")
    if mode == "fp8":
        transformer.enable_layerwise_casting(storage_dtype=FLOAT8, compute_dtype=compute_dtype)
        return
    from torchao.quantization import quantize_

    quantize_(transformer, int8_config(), filter_fn=quantizable_linear)


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
    """Whether the weights must be loaded on the host first (to be offloaded from there).

    Quantization does not: the loader quantizes each layer on the device as it streams in.
    """
    return options.offload != "none" or options.text_encoder_cpu


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
    at each segment boundary keeps the peaks equal. The streaming loader trims after
    each quantized layer for the same reason.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _libc() -> Any:
    """glibc, looked up once (``find_library`` runs a subprocess), or ``None`` where there is none."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - musl has no malloc_trim
    except (OSError, AttributeError):
        return None
    return libc
