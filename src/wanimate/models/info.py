"""What ``wanimate info`` reports: versions, the compute device, attention backends, cached weights.

It answers the first questions of any bug report ("which diffusers? which GPU? is the model even
downloaded?") in one command, without loading a model.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass, field

PACKAGES = ("wanimate", "torch", "diffusers", "transformers", "peft", "huggingface_hub", "av", "mediapipe")


@dataclass
class Info:
    versions: dict[str, str]
    device: str
    attention_available: list[str]  # usable on this machine's device
    attention_missing: dict[str, list[str]]  # why not usable here -> the backends it rules out
    weights: list[tuple[str, str, int, str]] = field(default_factory=list)  # name, kind, bytes, path


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def describe_device() -> str:
    import torch

    if torch.cuda.is_available():
        gpus = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(f"cuda:{i} {props.name} ({props.total_memory / 2**30:.1f} GiB)")
        return "; ".join(gpus)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps (Apple GPU)"
    return f"cpu ({os.cpu_count()} cores, no GPU found)"


def attention_backends() -> tuple[list[str], dict[str, list[str]]]:
    """Backends that run on this machine's best device, and the others with the reason each does not.

    "Installed" is not "available": cuDNN and flash attention import fine on a CPU-only machine but
    need a CUDA device, and hub backends download kernels at first use, so the same rule as
    ``--attention`` (:func:`wanimate.models.attention.unusable_reason`) decides.
    """
    import torch

    from wanimate.models.attention import all_backends, unusable_reason

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    available: list[str] = []
    missing: dict[str, list[str]] = {}
    for name in sorted(all_backends()):
        reason = unusable_reason(name, device)
        if reason is None:
            available.append(name)
        else:
            missing.setdefault(reason, []).append(name)
    return available, missing


def collect_info() -> Info:
    from wanimate.models.hub import find_cached_weights

    available, missing = attention_backends()
    weights = [(w.name, w.kind, w.size_bytes, str(w.path)) for w in find_cached_weights()]
    return Info({p: _version(p) for p in PACKAGES}, describe_device(), available, missing, weights)


def format_info(info: Info) -> str:
    lines = ["versions:"]
    lines += [f"  {name:<16} {version}" for name, version in info.versions.items()]
    lines += [f"device: {info.device}", "attention backends:"]
    lines.append(f"  available here: {', '.join(info.attention_available) or 'none'}")
    lines += [f"  {reason}: {', '.join(names)}" for reason, names in info.attention_missing.items()]
    lines.append("Wan-Animate, MultiAnimate and Wan2.1-I2V weights in the cache:")
    if not info.weights:
        lines.append("  none (download with `hf download Wan-AI/Wan2.2-Animate-14B`)")
    for name, kind, size, path in info.weights:
        lines.append(f"  {name:<48} {kind:<9} {size / 2**30:8.2f} GiB  {path}")
    return "\n".join(lines)
