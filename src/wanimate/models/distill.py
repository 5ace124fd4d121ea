"""Few-step distillation LoRAs (lightx2v-style Wan2.1 I2V 14B step-distill LoRAs) on the Animate DiT.

Wan-Animate's 40 blocks are Wan2.1-I2V-14B blocks (same names, same image
cross-attention), so the step-distill LoRAs trained for I2V 14B load onto them
through diffusers' Wan LoRA loader, which converts the original
``diffusion_model.blocks.N.self_attn.q.lora_down/lora_up/alpha`` key style.
They are trained for a few steps without CFG, hence the preset: 4 steps,
guidance 1 (one forward per step), shift 5. The adapter stays unmerged, beside
the relighting LoRA, so both strengths can change without reloading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from wanimate.errors import WanimateError

ADAPTER_NAME = "wanimate_distill"
# lightx2v's recommended sampling for its Wan2.1 I2V step-distill LoRAs.
PRESETS: dict[str, dict[str, Any]] = {"lightx2v": {"steps": 4, "guidance": 1.0, "shift": 5.0}}


def preset_settings(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise WanimateError(f"--preset must be one of {', '.join(PRESETS)}, not {name!r}")
    return dict(PRESETS[name])


def _adapter_weights(transformer: Any) -> dict[str, float]:
    """Current strength of every loaded adapter, read back from PEFT's per-layer scaling."""
    from peft.tuners.lora import LoraLayer

    weights: dict[str, float] = {}
    for module in transformer.modules():
        if not isinstance(module, LoraLayer):
            continue
        for name, scaling in module.scaling.items():
            if name not in weights:
                weights[name] = scaling / (module.lora_alpha[name] / module.r[name])
    return weights


def apply_distill_lora(pipe: Any, source: str | Path | dict[str, torch.Tensor], scale: float = 1.0) -> int:
    """Load a step-distill LoRA (file or state dict) onto ``pipe.transformer``; returns the layers it wraps.

    Adapters already present (the relighting LoRA) keep their strength.
    """
    from peft.tuners.lora import LoraLayer

    transformer = pipe.transformer
    if isinstance(source, str | Path) and not Path(source).is_file():
        raise WanimateError(f"distill LoRA {source} does not exist (a .safetensors file)")
    key = str(Path(source).resolve()) if isinstance(source, str | Path) else id(source)
    if getattr(transformer, "_wanimate_distill_source", None) != key:
        previous = _adapter_weights(transformer)
        previous.pop(ADAPTER_NAME, None)
        if ADAPTER_NAME in getattr(transformer, "peft_config", {}):
            transformer.delete_adapters(ADAPTER_NAME)
        state = source if isinstance(source, dict) else str(source)
        try:
            pipe.load_lora_weights(state, adapter_name=ADAPTER_NAME)
        except (ValueError, KeyError) as err:
            raise WanimateError(f"distill LoRA {source if not isinstance(source, dict) else ''}: {err}") from None
        transformer._wanimate_distill_source = key
    else:
        previous = {k: v for k, v in _adapter_weights(transformer).items() if k != ADAPTER_NAME}
    names = [*previous, ADAPTER_NAME]
    transformer.set_adapters(names, weights=[*previous.values(), scale])
    return sum(1 for m in transformer.modules() if isinstance(m, LoraLayer) and ADAPTER_NAME in m.lora_A)
