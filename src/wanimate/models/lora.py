"""The Wan2.2-Animate relighting LoRA (replace mode) on a diffusers transformer.

The official ``relighting_lora.ckpt`` is a PEFT state dict under ``"state_dict"`` with native module
names (``blocks.0.self_attn.q.lora_A.default.weight``); the hub also carries a PEFT folder
(``relighting_lora/adapter_model.safetensors``, prefix ``base_model.model.``). Both are renamed to the
diffusers module names and loaded as an unmerged PEFT adapter, as the official code keeps it, so its
strength can change between runs without reloading.

On a quantized transformer the adapter stays a separate full-precision low-rank branch: each targeted
layer computes ``Q(W) x + b + scale * (alpha / rank) * B A x``, where ``Q(W)`` is the int8 or fp8 base
weight as quantized (dequantized per row, or upcast, inside the base layer's forward) and A, B are in the
compute dtype. Merging into W before quantizing would bake one strength into the weights and quantize
the LoRA's update too; the branch costs 718M parameters of compute per step but keeps the official
behaviour (unmerged, strength per run) on every quantization mode.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.models.official import dit_native_module_to_diffusers
from wanimate.models.official_io import safe_torch_load

ADAPTER_NAME = "wanimate_relight"
# ``get_loraconfig(rank=128, alpha=128)`` in the official animate_utils.py: the .ckpt stores no alpha.
NATIVE_LORA_ALPHA = 128.0


def read_relight_lora(path: Path) -> tuple[dict[str, torch.Tensor], int, float]:
    """(diffusers-named ``lora_A``/``lora_B`` tensors, rank, alpha) from a ``.ckpt`` or PEFT folder."""
    alpha = NATIVE_LORA_ALPHA
    if path.is_dir():
        from safetensors.torch import load_file

        weights = path / "adapter_model.safetensors"
        if not weights.is_file():
            raise WanimateError(f"LoRA folder {path} has no adapter_model.safetensors")
        raw: dict[str, Any] = load_file(weights)
        config = path / "adapter_config.json"
        if config.is_file():
            alpha = float(json.loads(config.read_text()).get("lora_alpha", alpha))
    elif path.suffix == ".safetensors":
        from safetensors.torch import load_file

        raw = load_file(path)
    elif path.is_file():
        obj = safe_torch_load(path)
        raw = obj.get("state_dict", obj) if isinstance(obj, dict) else {}
    else:
        raise WanimateError(f"relighting LoRA {path} does not exist")
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        module, sep, rest = key.removeprefix("base_model.model.").partition(".lora_")
        if not sep or not isinstance(value, torch.Tensor):
            raise WanimateError(f"{path} is not a LoRA state dict (unexpected entry {key!r})")
        rest = rest.replace(".default.", ".")
        state[f"{dit_native_module_to_diffusers(module)}.lora_{rest}"] = value
    ranks = {int(v.shape[0]) for k, v in state.items() if ".lora_A." in k}
    if len(ranks) != 1:
        raise WanimateError(f"{path} holds no LoRA weights or mixes ranks {sorted(ranks)}")
    return state, ranks.pop(), alpha


def apply_relight_lora(transformer: Any, path: Path, scale: float = 1.0) -> None:
    """Attach the relighting LoRA to ``transformer`` (once) and set its strength to ``scale``.

    Each targeted Linear then computes ``W x + scale * (alpha / rank) * B A x``. Calling again with the
    same file only changes the scale; a different file replaces the adapter.
    """
    path = Path(path).resolve()
    current = getattr(transformer, "_wanimate_relight_path", None)
    if current != path:
        state, rank, alpha = read_relight_lora(path)
        targets = sorted({k.split(".lora_", 1)[0] for k in state})
        for name in targets:
            try:
                layer = transformer.get_submodule(name)
            except AttributeError:
                layer = None
            layer = getattr(layer, "base_layer", layer)  # already wrapped by a previous adapter
            if not isinstance(layer, torch.nn.Linear):
                raise WanimateError(f"relighting LoRA targets {name!r}, which is not a Linear layer of this model")
        if current is not None:
            transformer.delete_adapters(ADAPTER_NAME)
        with warnings.catch_warnings():
            # PEFT warns that an adapter on a torchao int8 layer cannot be merged; it is never merged here.
            warnings.filterwarnings("ignore", message="TorchaoLoraLinear was instantiated")
            transformer.load_lora_adapter(
                state,
                adapter_name=ADAPTER_NAME,
                prefix=None,
                metadata={"r": rank, "lora_alpha": alpha, "target_modules": targets},
            )
        _match_base_dtype(transformer)
        transformer._wanimate_relight_path = path
    transformer.set_adapters([ADAPTER_NAME], weights=[scale])


def _match_base_dtype(transformer: Any) -> None:
    """Keep LoRA weights in the layers' compute dtype: fp32 copies of a 718M-parameter adapter waste 1.4 GB.

    The compute dtype, not the stored one: an fp8-stored base layer computes in bf16 (diffusers reports
    that as ``transformer.dtype``), and an int8 base layer reports its compute dtype as its own.
    """
    from peft.tuners.lora import LoraLayer

    dtype = transformer.dtype
    for module in transformer.modules():
        if isinstance(module, LoraLayer):
            module.lora_A[ADAPTER_NAME].to(dtype)
            module.lora_B[ADAPTER_NAME].to(dtype)


def count_lora_layers(transformer: Any) -> int:
    """Number of Linear layers wrapped by the relighting adapter (12 per block for the official LoRA)."""
    from peft.tuners.lora import LoraLayer

    return sum(1 for m in transformer.modules() if isinstance(m, LoraLayer) and ADAPTER_NAME in m.lora_A)
