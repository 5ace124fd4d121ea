"""Generation settings: the one definition of every ``generate`` option, and the resume key.

The CLI (``wanimate generate``, ``wanimate run``, ``wanimate bench generate``), the server's job
options and the Python API are all derived from the fields below (see :mod:`wanimate.options`).
The materials' mode is not a generation setting: it belongs to the materials folder
(``load_materials(path, mode=...)``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanimate import options
from wanimate.errors import WanimateError
from wanimate.models.hub import DEFAULT_REPO
from wanimate.models.modes import CACHE_MODES, DISTILL_PRESETS, DTYPES, OFFLOAD_MODES, QUANTIZE_MODES
from wanimate.options import option

if TYPE_CHECKING:
    import torch

# The official defaults (wan/configs/wan_animate_14B.py).
DEFAULT_PROMPT = "视频中的人在做动作"
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
CLIP_INPUTS = ("official", "diffusers")
# The UniPC schedule (wanimate.generate.sampler): the official Wan2.2 one, or WanAnimatePipeline's.
SAMPLERS = ("official", "diffusers")


def _segment_rule(frames: int) -> str | None:
    return None if frames % 4 == 1 else "must be 4n+1 (e.g. 77 or 81)"


@dataclass(frozen=True)
class GenerateSettings:
    """Everything that shapes one generation; invalid values raise :class:`WanimateError` on construction.

    ``relight=None`` means: on in replace mode when the weights carry the LoRA. ``clip_input``
    picks how the character image reaches CLIP: ``official`` squashes the letterboxed reference to
    the CLIP size (the Wan2.2 code), ``diffusers`` resizes the raw image's short side and
    centre-crops (WanAnimatePipeline). ``sampler`` picks the UniPC schedule (see
    :mod:`wanimate.generate.sampler`). A ``preset`` sets steps, guidance and shift (it wins over
    them). Fields with ``pixels=False`` only move weights around or reuse bit-identical results,
    so they stay out of the resume key; ``weights`` and ``adapter`` enter it as the loaded model's
    resolved sources. :class:`~wanimate.multianimate.settings.MultiAnimateSettings` is the same
    options with MultiAnimate's defaults.
    """

    weights: str = option(
        DEFAULT_REPO, help="Hub repo id, local folder, single .safetensors/.gguf file, or random:tiny (an "
        "animate-mode cast runs MultiAnimate on its Wan2.1-I2V base unless another is given).", serve=True,
        pixels=False,
    )  # fmt: skip
    base: str | None = option(
        None, help="For a single-file transformer: where the VAE and encoders come from (hub id or folder)."
    )
    adapter: str = option(
        "auto", help="multianimate: the MultiAnimate checkpoint: auto (smallest release that fits the "
        "characters), multianimate-3, multianimate-7, a checkpoint folder or .safetensors, or random[:N].",
        pixels=False,
    )  # fmt: skip
    steps: int = option(20, help="Denoising steps per segment.", min=1, max=200, serve=True)
    guidance: float = option(
        1.0, help="CFG scale; above 1 adds a negative-prompt/blank-face pass.", min=1.0, max=20.0, serve=True
    )
    shift: float = option(5.0, help="Flow-matching timestep shift.", above=0.0, max=50.0, serve=True)
    seed: int = option(42, help="Random seed.", min=0, max=2**32 - 1, serve=True)
    segment_frames: int = option(77, help="Frames per segment (4n+1).", min=5, max=161, rule=_segment_rule, serve=True)
    overlap: int = option(1, help="Temporal-guidance frames from the previous segment.", choices=(1, 5), serve=True)
    relight: bool | None = option(
        None, help="Relighting LoRA (default: on in replace mode when the weights carry it).", serve=True
    )
    relight_scale: float = option(1.0, help="Relighting LoRA strength.", min=0.0, max=2.0, serve=True)
    prompt: str = option(DEFAULT_PROMPT, help="Text prompt.", max_length=2000, serve=True)
    negative_prompt: str = option(
        DEFAULT_NEGATIVE_PROMPT, help="Negative prompt (used when guidance > 1).", max_length=2000, serve=True
    )
    dtype: str = option("bf16", help="Weights and compute dtype.", choices=tuple(DTYPES), serve=True)
    device: str = option("auto", help="auto, cpu, cuda, cuda:1, mps ...")
    clip_input: str = option(
        "official", help="official (squash the letterboxed reference) or diffusers (centre crop).",
        choices=CLIP_INPUTS, serve=True,
    )  # fmt: skip
    sampler: str = option(
        "official", help="UniPC schedule: official (Wan2.2's, sigma from 0.9998) or diffusers (WanAnimatePipeline's).",
        choices=SAMPLERS, serve=True,
    )  # fmt: skip
    color_correction: float = option(
        0.0, help="Match each new segment's Lab colour statistics to the first segment's: 0 (off) to 1 (full).",
        min=0.0, max=1.0, serve=True,
    )  # fmt: skip
    batch_cfg: bool = option(True, help="With guidance > 1, run cond and uncond as one batch.", serve=True)
    audio: bool = option(True, help="Carry the driving video's audio into the output.", pixels=False, serve=True)
    # Speed and memory (docs/performance.md).
    offload: str = option(
        "none", help="none, model, group (layer streaming) or sequential.", choices=OFFLOAD_MODES, pixels=False,
        serve=True,
    )  # fmt: skip
    quantize: str = option(
        "none", help="DiT weights, quantized layer by layer while loading: none, fp8 (storage, bf16 compute) or "
        "int8 (torchao). Pre-quantized weights load as stored.", choices=QUANTIZE_MODES, serve=True,
    )  # fmt: skip
    text_encoder_cpu: bool = option(
        False, help="Run the umT5 text encoder on the CPU (saves ~11 GB).", negative="", serve=True
    )
    vae_tiling: bool = option(
        False, help="Tiled VAE decode (bounded memory at high resolution).", negative="", serve=True
    )
    vram_budget: float | None = option(
        None, help="GB of VRAM to fit in: picks offload/quantize/text-encoder/VAE options and says which.",
        above=0.0, max=4096.0, pixels=False, serve=True,
    )  # fmt: skip
    ram_budget: float | None = option(
        None, help="GB of host RAM to fit in (with or without --vram-budget): picks quantization and offload.",
        above=0.0, max=65536.0, pixels=False, serve=True,
    )  # fmt: skip
    attention: str = option(
        "native", help="Attention backend: native, flash, sage, xformers, flex ...", max_length=64, serve=True
    )
    compile: bool = option(False, help="torch.compile the repeated transformer blocks.", negative="", serve=True)
    cache: str = option(
        "none", help="Step cache: none, fbc (face-aware first-block) or taylorseer.", choices=CACHE_MODES,
        serve=True,
    )  # fmt: skip
    cache_threshold: float = option(
        0.05, help="fbc: relative change below which a step is cached.", min=0.0, max=1.0, serve=True
    )
    cache_interval: int = option(3, help="taylorseer: full step every N steps.", min=1, max=100, serve=True)
    distill_lora: str | None = option(None, help="Step-distill LoRA file (lightx2v-style Wan I2V 14B).")
    distill_scale: float = option(1.0, help="Step-distill LoRA strength.", min=0.0, max=2.0, serve=True)
    preset: str | None = option(
        None, help="lightx2v: 4 steps, guidance 1, shift 5 (use with --distill-lora); overrides them.",
        choices=tuple(DISTILL_PRESETS), pixels=False, serve=True,
    )  # fmt: skip
    motion_memo: bool = option(
        True, help="Encode each face chunk once per segment (exact; off only to measure it).", pixels=False
    )

    def __post_init__(self) -> None:
        options.check(self)
        self.check_model()
        if self.segment_frames <= self.overlap:
            raise WanimateError(f"--segment-frames ({self.segment_frames}) must exceed --overlap ({self.overlap})")
        if self.preset is not None:
            for name, value in DISTILL_PRESETS[self.preset].items():
                object.__setattr__(self, name, value)

    def check_model(self) -> None:
        """The options that belong to the other model family are refused (here: the MultiAnimate checkpoint)."""
        if self.adapter != "auto":
            raise WanimateError("--adapter is a MultiAnimate option (generate --model multianimate)")

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
        payload = {**options.pixel_values(self), "device": self.resolved_device().type, **extra}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


MODELS = ("auto", "animate", "multianimate")


def check_model(model: str) -> None:
    """``--model`` is one of ``MODELS``: one clear line if not (every command that takes it)."""
    if model not in MODELS:
        raise WanimateError(f"--model must be {', '.join(MODELS[:-1])} or {MODELS[-1]}, not {model!r}")


def materials_model(materials: Path) -> str:
    """``multianimate`` for an N-character folder (ours or MultiAnimate's demo layout), else ``animate``."""
    from wanimate.materials.folder import is_character_folder, read_meta

    if materials.is_dir() and is_character_folder(materials, read_meta(materials)):
        return "multianimate"
    return "animate"


def settings_class(model: str, materials: Path) -> type[GenerateSettings]:
    """The settings class for ``--model`` (``auto``: from the materials)."""
    check_model(model)
    if (materials_model(materials) if model == "auto" else model) == "multianimate":
        from wanimate.multianimate.settings import MultiAnimateSettings

        return MultiAnimateSettings
    return GenerateSettings
