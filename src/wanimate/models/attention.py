"""Attention backend choice through diffusers' dispatcher, and regional compilation.

Wan-Animate's self-, cross- and face-adapter attention all go through
``dispatch_attention_fn``, so one ``set_attention_backend`` switches every one of
them. Backends that need a package (flash-attn, sageattention, xformers), a CUDA
device, or a kernel download from the Hub are checked here first: an unusable
choice falls back to PyTorch's native SDPA with a warning instead of failing
half-way through a render.
"""

from __future__ import annotations

import logging

import torch

from wanimate.errors import WanimateError

log = logging.getLogger("wanimate")

# Backends whose kernels only exist on CUDA devices.
_CUDA_ONLY = ("flash", "_flash", "sage", "_sage", "xformers", "_native_cudnn", "_native_efficient", "_native_flash")
# Hub kernels are downloaded at first use; this project runs offline-first, so they are opt-in only by name.
_HUB_SUFFIX = "_hub"


def all_backends() -> list[str]:
    from diffusers.models.attention_dispatch import AttentionBackendName

    return [b.value for b in AttentionBackendName]


def unusable_reason(name: str, device: torch.device) -> str | None:
    """Why ``name`` cannot run on ``device`` here, or ``None`` when it can."""
    from diffusers.models.attention_dispatch import AttentionBackendName, _check_attention_backend_requirements

    if name not in all_backends():
        return f"unknown backend (choose from {', '.join(all_backends())})"
    if name.endswith(_HUB_SUFFIX):
        return "downloads its kernel from the Hugging Face Hub at first use"
    if name in ("_native_npu", "_native_xla"):
        return "needs an NPU/XLA device"
    if name.startswith(_CUDA_ONLY) and device.type != "cuda":
        return f"needs a CUDA device (running on {device.type})"
    try:
        _check_attention_backend_requirements(AttentionBackendName(name))
    except RuntimeError as err:
        return str(err).split(". ")[0]
    return None


def usable_backends(device: torch.device) -> list[str]:
    """Backends importable and runnable on ``device`` in this environment."""
    return [name for name in all_backends() if unusable_reason(name, device) is None]


def set_attention(transformer: torch.nn.Module, name: str, device: torch.device) -> str:
    """Switch every attention of this transformer (and only this one) to ``name``; returns the backend used.

    diffusers' ``set_attention_backend`` names the backend on each attention processor and also
    makes it the process-wide default for processors that name none, so one model's choice would
    leak into every other pipeline in the process (another GPU slot's session, a baseline). The
    processors of this transformer now name their backend, so the process-wide default is put back.
    """
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    if name in ("native", "sdpa", "auto"):
        name = "native"
    reason = unusable_reason(name, device)
    if reason is not None:
        if name not in all_backends():
            raise WanimateError(f"--attention {name}: {reason}")
        log.warning("attention backend %s is not usable: %s; falling back to native SDPA", name, reason)
        name = "native"
    previous = _AttentionBackendRegistry._active_backend
    transformer.set_attention_backend(name)
    _AttentionBackendRegistry.set_active_backend(previous)
    return name


def compile_blocks(transformer: torch.nn.Module, device: torch.device, fullgraph: bool = True) -> None:
    """torch.compile each repeated ``WanTransformerBlock`` once (regional compilation).

    Compiling the 40 identical blocks instead of the whole model compiles one graph
    and reuses it, so the first-step cost stays in seconds; the face encoder's
    replicate padding, which recompiles under full-model compilation, stays eager.
    Inductor needs a C++ compiler on CPU and Triton on CUDA. ``fullgraph=False``
    lets step-cache hooks, whose compute-or-skip decision is a Python branch, break
    the graph instead of failing.
    """
    if device.type == "cpu":
        import shutil

        if shutil.which("cc") is None and shutil.which("gcc") is None:
            raise WanimateError("--compile on CPU needs a C compiler (apt-get install gcc)")
    transformer.compile_repeated_blocks(fullgraph=fullgraph, dynamic=False)
