"""Generation settings for MultiAnimate: the shared options, with the reference's defaults.

:class:`MultiAnimateSettings` is a :class:`~wanimate.generate.settings.GenerateSettings`, so the
options both models share (seed, dtype, device, offload, quantization, attention, compile, batched
CFG, colour correction, the resume key) have one definition. Only the defaults differ, taken from
``examples/inference_multi{3,4}.py``: 50 steps, CFG 1.5, shift 5, 81-frame segments, its negative
prompt and its caption, and its base (``Wan-AI/Wan2.1-I2V-14B-720P``). ``sampler="official"`` is the
reference's own sampler here (Euler on DiffSynth's flow sigmas). Options that belong to
Wan2.2-Animate (relighting, 5-frame temporal guidance, the face-aware step cache, step-distill LoRAs,
the UniPC schedules) are refused with one line; replace mode, a property of the materials, is refused
by ``generate``.
"""

from __future__ import annotations

from dataclasses import dataclass

from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.models.families import I2V
from wanimate.options import redefault

# The negative prompt of inference_multi3.py / inference_multi4.py (shorter than Wan2.2-Animate's).
NEGATIVE_PROMPT = (
    "细节模糊不清，字幕，作品，画作，画面，静止，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，"
    "画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，杂乱的背景，三条腿，背景人很多，倒着走"
)
# The reference's captions ("three person are dancing"; training cached "two person are dancing").
_NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def default_prompt(characters: int) -> str:
    word = _NUMBERS[characters - 1] if 1 <= characters <= len(_NUMBERS) else str(characters)
    return f"{word} person are dancing"


_OTHER_FAMILY = (
    "is a Wan2.2-Animate option; MultiAnimate animates the characters of the reference and continues each "
    "segment from the previous one's last frame (see docs/multianimate.md)"
)


@dataclass(frozen=True)
class MultiAnimateSettings(GenerateSettings):
    """The same options, MultiAnimate's defaults. ``prompt=""`` means the reference's caption for the
    number of characters (``default_prompt``)."""

    weights: str = redefault(GenerateSettings, "weights", I2V.default_repo)
    steps: int = redefault(GenerateSettings, "steps", 50)
    guidance: float = redefault(GenerateSettings, "guidance", 1.5)
    segment_frames: int = redefault(GenerateSettings, "segment_frames", 81)
    prompt: str = redefault(GenerateSettings, "prompt", "")
    negative_prompt: str = redefault(GenerateSettings, "negative_prompt", NEGATIVE_PROMPT)
    motion_memo: bool = redefault(GenerateSettings, "motion_memo", False)

    def check_model(self) -> None:
        refused = {
            "--overlap 5": self.overlap != 1,
            "--relight": bool(self.relight),
            f"--cache {self.cache}": self.cache != "none",
            "--distill-lora": self.distill_lora is not None,
            "--clip-input diffusers": self.clip_input != "official",
            "--sampler diffusers": self.sampler != "official",
            "--motion-memo": self.motion_memo,
        }
        for option, used in refused.items():
            if used:
                raise WanimateError(f"{option} {_OTHER_FAMILY}")

    def prompt_for(self, characters: int) -> str:
        return self.prompt or default_prompt(characters)
