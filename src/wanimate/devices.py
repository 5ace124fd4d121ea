"""``--device``: what may be asked for, and what this machine has.

A typo or a GPU that is not there must fail before a model loads, with the list of devices
that would work, not deep inside torch with "Torch not compiled with CUDA enabled".
"""

from __future__ import annotations

import re

from wanimate.errors import WanimateError

_SYNTAX = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
_FORMS = "auto, cpu, cuda, cuda:N or mps"


def available_devices() -> list[str]:
    """Devices torch can use here, e.g. ``["cpu", "cuda:0", "cuda:1"]``."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def check_device_syntax(text: str) -> str:
    """The normalized spelling of a ``--device`` value; checks the form only (no torch import)."""
    value = text.strip().lower()
    if not _SYNTAX.fullmatch(value):
        raise WanimateError(f"--device {text!r} is not a device; use {_FORMS}")
    return value


def check_device(text: str) -> str:
    """``text`` normalized, if this machine has that device; else one line listing the ones it has."""
    value = check_device_syntax(text)
    if value == "auto":
        return value
    here = available_devices()
    wanted = "cuda:0" if value == "cuda" else value
    if wanted not in here:
        raise WanimateError(f"--device {text} is not available on this machine; available: {', '.join(here)}")
    return value
