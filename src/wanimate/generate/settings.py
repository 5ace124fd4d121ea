"""Generation settings, and the part of them that decides the result (the resume key)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from wanimate.errors import WanimateError

if TYPE_CHECKING:
    import torch

# The official defaults (wan/configs/wan_animate_14B.py).
DEFAULT_PROMPT = "视频中的人在做动作"
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
DEFAULT_WEIGHTS = "Wan-AI/Wan2.2-Animate-14B"
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# The speed/memory choices, here rather than beside their code so that checking them needs no torch.
OFFLOAD_MODES = ("none", "model", "group", "sequential")
QUANTIZE_MODES = ("none", "fp8", "int8")
CACHE_MODES = ("none", "fbc", "taylorseer")

ClipInput = Literal["official", "diffusers"]
Sampler = Literal["official", "diffusers"]


@dataclass(frozen=True)
class GenerateSettings:
    """Everything that shapes one generation.

    ``clip_input`` picks how the character image reaches CLIP: ``official`` squashes
    the letterboxed reference to the CLIP size (the Wan2.2 code), ``diffusers``
    resizes the raw image's short side and centre-crops (WanAnimatePipeline).
    ``relight=None`` means: on in replace mode when the weights carry the LoRA;
    ``mode=None`` takes the materials folder's mode. ``sampler`` picks the UniPC schedule:
    ``official`` (Wan2.2's, the default) or ``diffusers`` (WanAnimatePipeline's); see
    :mod:`wanimate.generate.sampler`.
    """

    mode: Literal["animate", "replace"] | None = None
    steps: int = 20
    guidance: float = 1.0
    shift: float = 5.0
    seed: int = 42
    segment_frames: int = 77
    overlap: int = 1
    relight: bool | None = None
    relight_scale: float = 1.0
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    dtype: str = "bf16"
    device: str = "auto"
    clip_input: ClipInput = "official"
    sampler: Sampler = "official"
    # 0 = off; 1 = each new segment's Lab mean and spread fully matched to the first segment's.
    color_correction: float = 0.0
    batch_cfg: bool = True
    # Speed and memory (docs/performance.md). ``offload`` and the budgets only move weights around
    # (a budget is resolved into the other options before the key is taken) and ``motion_memo``
    # reuses bit-identical results, so they are left out of the result key; everything else can
    # change the pixels.
    offload: str = "none"
    quantize: str = "none"
    text_encoder_cpu: bool = False
    vae_tiling: bool = False
    vram_budget: float | None = None
    ram_budget: float | None = None
    attention: str = "native"
    compile: bool = False
    cache: str = "none"
    cache_threshold: float = 0.05
    cache_interval: int = 3
    distill_lora: str | None = None
    distill_scale: float = 1.0
    motion_memo: bool = True

    def validate(self) -> None:
        if self.mode not in (None, "animate", "replace"):
            raise WanimateError(f"--mode must be animate or replace, not {self.mode!r}")
        if self.overlap not in (1, 5):
            raise WanimateError(f"--overlap must be 1 or 5 (temporal-guidance frames), not {self.overlap}")
        if self.segment_frames < 5 or self.segment_frames % 4 != 1:
            raise WanimateError(
                f"--segment-frames must be 4n+1 and at least 5 (e.g. 77 or 81), not {self.segment_frames}"
            )
        if self.segment_frames <= self.overlap:
            raise WanimateError(f"--segment-frames ({self.segment_frames}) must exceed --overlap ({self.overlap})")
        if self.steps < 1:
            raise WanimateError(f"--steps must be at least 1, not {self.steps}")
        if self.guidance < 1.0:
            raise WanimateError(f"--guidance must be at least 1.0 (1.0 disables CFG), not {self.guidance}")
        if self.shift <= 0:
            raise WanimateError(f"--shift must be positive, not {self.shift}")
        if self.dtype not in DTYPES:
            raise WanimateError(f"--dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.clip_input not in ("official", "diffusers"):
            raise WanimateError(f"clip_input must be 'official' or 'diffusers', not {self.clip_input!r}")
        if not 0.0 <= self.color_correction <= 1.0:
            raise WanimateError(f"--color-correction must be between 0 (off) and 1, not {self.color_correction}")
        if self.sampler not in ("official", "diffusers"):
            raise WanimateError(f"--sampler must be official or diffusers, not {self.sampler!r}")
        self._validate_speed()

    def _validate_speed(self) -> None:
        for flag, value, allowed in (
            ("--offload", self.offload, OFFLOAD_MODES),
            ("--quantize", self.quantize, QUANTIZE_MODES),
            ("--cache", self.cache, CACHE_MODES),
        ):
            if value not in allowed:
                raise WanimateError(f"{flag} must be one of {', '.join(allowed)}, not {value!r}")
        for flag, budget in (("--vram-budget", self.vram_budget), ("--ram-budget", self.ram_budget)):
            if budget is not None and budget <= 0:
                raise WanimateError(f"{flag} must be a positive number of GB, not {budget:g}")
        if self.cache_threshold < 0:
            raise WanimateError(f"--cache-threshold must be at least 0, not {self.cache_threshold}")
        if self.cache_interval < 1:
            raise WanimateError(f"--cache-interval must be at least 1, not {self.cache_interval}")

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, DTYPES[self.dtype])

    def resolved_device(self) -> torch.device:
        import torch

        if self.device != "auto":
            return torch.device(self.device)
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

    def result_key(self, **extra: Any) -> str:
        """A hash of everything that changes the pixels; ``extra`` adds inputs and weights identity."""
        payload = {**asdict(self), "device": self.resolved_device().type, **extra}
        for exact in ("offload", "vram_budget", "ram_budget", "motion_memo"):
            payload.pop(exact)
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]
