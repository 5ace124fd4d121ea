"""The names a model session understands, in one light module (no torch) so settings can offer them.

``wanimate.models.memory``, ``wanimate.models.caching`` and ``wanimate.models.distill`` implement
these modes; the settings of ``generate`` validate against them without importing those modules.
"""

from __future__ import annotations

from typing import Any

from wanimate.errors import WanimateError

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
OFFLOAD_MODES = ("none", "model", "group", "sequential")
QUANTIZE_MODES = ("none", "fp8", "int8")
CACHE_MODES = ("none", "fbc", "taylorseer")
# lightx2v's recommended sampling for its Wan2.1 I2V step-distill LoRAs.
DISTILL_PRESETS: dict[str, dict[str, Any]] = {"lightx2v": {"steps": 4, "guidance": 1.0, "shift": 5.0}}


def check_dtype(dtype: str) -> None:
    """``--dtype`` is one of ``DTYPES``: one clear line if not."""
    if dtype not in DTYPES:
        raise WanimateError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
