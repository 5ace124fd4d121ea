"""Few-step distillation LoRAs (lightx2v-style Wan2.1 I2V 14B step-distill LoRAs) on the Animate DiT.

Wan-Animate's 40 blocks are Wan2.1-I2V-14B blocks (same names, same image
cross-attention), so the step-distill LoRAs trained for I2V 14B load onto them
through diffusers' Wan LoRA loader, which converts the original
``diffusion_model.blocks.N.self_attn.q.lora_down/lora_up/alpha`` key style.
They are trained for a few steps without CFG, hence the preset: 4 steps,
guidance 1 (one forward per step), shift 5 (``--preset lightx2v``,
``wanimate.models.modes.DISTILL_PRESETS``). The adapter stays unmerged, beside
the relighting LoRA, so both strengths can change without reloading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from wanimate.errors import WanimateError

ADAPTER_NAME = "wanimate_distill"


def load_distill_lora(pipe: Any, source: str | Path | dict[str, torch.Tensor]) -> None:
    """Load a step-distill LoRA (file or state dict) onto ``pipe.transformer`` as ``ADAPTER_NAME``.

    One loaded before under that name is replaced. Which adapters are active, at which strength, is
    set by :class:`wanimate.models.adapters.Adapters`.
    """
    transformer = pipe.transformer
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise WanimateError(f"distill LoRA {source} does not exist (a .safetensors file)")
    if ADAPTER_NAME in (getattr(transformer, "peft_config", None) or {}):
        transformer.delete_adapters(ADAPTER_NAME)
    state = source if isinstance(source, dict) else str(source)
    try:
        pipe.load_lora_weights(state, adapter_name=ADAPTER_NAME)
    except (ValueError, KeyError) as err:
        raise WanimateError(f"distill LoRA {source if not isinstance(source, dict) else ''}: {err}") from None
