"""Build a model from a stream of tensors, quantizing each layer as its weights arrive.

The 14B DiT is 35 GB in bf16 (69 GB as the diffusers repo stores it, in fp32). Loading it whole and
quantizing afterwards needs all of that in host memory first; here the peak is the *final* model plus
the one tensor in flight:

- the skeleton is built with its parameters on the meta device (accelerate's ``init_empty_weights``;
  buffers computed in ``__init__``, like the RoPE tables, stay real);
- safetensors files are read one tensor at a time, reopening the file for each, so the file's memory
  map never accumulates pages in the resident set;
- each tensor is cast by ``from_pretrained``'s dtype rule (``_keep_in_fp32_modules`` stay float32),
  moved to the device and assigned;
- when a module's last tensor is in, the module is finished: an int8 Linear is quantized there and
  then with torchao's ``quantize_`` (the same call, on the same values, as quantizing the loaded
  model, hence bit-identical); for fp8, diffusers' ``enable_layerwise_casting`` is applied to the
  skeleton before any weight arrives, so its storage dtype is already on the meta parameters and each
  tensor is cast to fp8 as it is assigned.

Nothing here is specific to Wan-Animate: any diffusers ``ModelMixin`` class built with ``from_config``
streams the same way (the Wan2.1 I2V base of MultiAnimate too).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from wanimate.errors import WanimateError
from wanimate.generate.settings import QUANTIZE_MODES

FLOAT8 = torch.float8_e4m3fn
# The top-level modules whose Linear layers are quantized: 98% of the 14B weights.
QUANTIZED_PARENTS = ("blocks", "face_adapter")

Tensor = torch.Tensor


def quantizable_linear(module: torch.nn.Module, name: str) -> bool:
    """The blocks' and face adapters' linears; never a LoRA branch (it stays in the compute dtype).

    Embedders, the output projection and norms stay in the compute dtype, as the model's
    ``_skip_layerwise_casting_patterns`` asks for fp8. With a PEFT adapter attached the base layer is
    ``<name>.base_layer`` and is quantized like the plain layer; ``<name>.lora_A/B`` are not.
    """
    parts = name.split(".")
    return (
        isinstance(module, torch.nn.Linear)
        and parts[0] in QUANTIZED_PARENTS
        and not any(p.startswith("lora_") for p in parts)
    )


def check_quantize(mode: str) -> None:
    if mode not in QUANTIZE_MODES:
        raise WanimateError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, not {mode!r}")


def int8_config() -> Any:
    try:
        from torchao.quantization import Int8WeightOnlyConfig
    except ImportError:
        raise WanimateError("--quantize int8 needs torchao: pip install 'wanimate[gpu]' or torchao") from None
    return Int8WeightOnlyConfig()


def is_quantized_tensor(tensor: Tensor) -> bool:
    """A torchao tensor subclass (int8 data + scales) rather than a plain tensor."""
    return type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "__tensor_flatten__")


def build_skeleton(model_cls: Any, config: dict[str, Any]) -> torch.nn.Module:
    """``model_cls.from_config(config)`` with every parameter on the meta device (no memory).

    As in diffusers' ``from_pretrained``: ``torch.nn.init`` is skipped too, or every layer would be
    randomly initialised on the host before moving to meta (minutes for the 14B model).
    """
    from accelerate import init_empty_weights
    from diffusers.models.modeling_utils import no_init_weights

    with no_init_weights(), init_empty_weights():
        return model_cls.from_config(config)


def param_dtype(name: str, dtype: torch.dtype, keep_fp32: Iterable[str]) -> torch.dtype:
    """diffusers' ``from_pretrained`` rule: modules named in ``_keep_in_fp32_modules`` stay float32."""
    return torch.float32 if any(m in name.split(".") for m in keep_fp32) else dtype


def assign_tensor(model: torch.nn.Module, key: str, value: Tensor) -> None:
    """Replace a meta parameter or buffer by ``value`` without allocating anything else."""
    owner, _, name = key.rpartition(".")
    module = model.get_submodule(owner)
    if name in module._parameters:
        module._parameters[name] = torch.nn.Parameter(value, requires_grad=False)
    else:
        module._buffers[name] = value


class StreamingBuilder:
    """Fills a meta skeleton tensor by tensor and finishes (quantizes) each module when it is complete.

    ``quantize`` is ``none``, ``fp8`` (storage, upcast per layer to ``dtype``) or ``int8`` (torchao
    weight-only). Tensors that are already quantized (a pre-quantized folder) are assigned as they are.
    """

    def __init__(self, skeleton: torch.nn.Module, *, dtype: torch.dtype, device: torch.device, quantize: str) -> None:
        check_quantize(quantize)
        self.model = skeleton
        self.dtype = dtype
        self.device = torch.device(device)
        self.quantize = quantize
        self._keep = getattr(skeleton, "_keep_in_fp32_modules", None) or []
        self._pending: dict[str, set[str]] = {}
        for key in skeleton.state_dict():
            self._pending.setdefault(key.rpartition(".")[0], set()).add(key)
        self._int8 = int8_config() if quantize == "int8" else None
        if quantize == "fp8":
            skeleton.enable_layerwise_casting(storage_dtype=FLOAT8, compute_dtype=dtype)

    def add(self, key: str, value: Tensor) -> str | None:
        """Assign one tensor; returns the module's name when this was its last tensor."""
        owner = key.rpartition(".")[0]
        pending = self._pending.get(owner)
        if pending is None or key not in pending:
            raise WanimateError(
                f"the checkpoint has an unexpected or repeated tensor {key!r}; is it {type(self.model).__name__}?"
            )
        assign_tensor(self.model, key, self._cast(key, value))
        pending.discard(key)
        if pending:
            return None
        del self._pending[owner]
        self._finish(owner)
        return owner

    def _cast(self, key: str, value: Tensor) -> Tensor:
        if is_quantized_tensor(value):
            if value.dtype != self.dtype:
                raise WanimateError(
                    f"these weights were quantized for {str(value.dtype).removeprefix('torch.')} compute; "
                    f"load them with that dtype (--dtype {dtype_flag(value.dtype)})"
                )
            return value.to(self.device)
        if not value.is_floating_point():
            return value.to(self.device)
        target = self.model.get_parameter(key) if _is_parameter(self.model, key) else self.model.get_buffer(key)
        out = value.to(device=self.device, dtype=param_dtype(key, self.dtype, self._keep))
        return out.to(FLOAT8) if target.dtype == FLOAT8 else out

    def _finish(self, name: str) -> None:
        if self.quantize == "none":
            return
        module = self.model.get_submodule(name)
        if not quantizable_linear(module, name):
            return
        if self._int8 is not None and not is_quantized_tensor(module.weight):
            from torchao.quantization import quantize_

            quantize_(module, self._int8)
        # glibc raises its mmap threshold once a large full-precision tensor is freed, so the next ones
        # come from the heap and the space they leave stays resident: about twice the final size by
        # the end of a load, unless it is handed back as the load goes.
        from wanimate.models.memory import release_host_memory

        release_host_memory()

    def take(self, name: str) -> dict[str, Tensor]:
        """Remove a finished module's checkpoint tensors from the model and return them (for writing out)."""
        module = self.model.get_submodule(name)
        prefix = f"{name}." if name else ""
        owned = [(module._parameters, k) for k in module._parameters]
        owned += [(module._buffers, k) for k in module._buffers if k not in module._non_persistent_buffers_set]
        out: dict[str, Tensor] = {}
        for store, key in owned:
            if store[key] is not None:
                out[prefix + key] = store[key].detach()
                store[key] = None
        return out

    def finish(self) -> torch.nn.Module:
        """The model, once every tensor has arrived; missing tensors are an error, never random weights."""
        missing = sorted(k for keys in self._pending.values() for k in keys)
        if missing:
            raise WanimateError(f"the checkpoint lacks {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
        return self.model.eval().requires_grad_(False)


def _is_parameter(model: torch.nn.Module, key: str) -> bool:
    owner, _, name = key.rpartition(".")
    return name in model.get_submodule(owner)._parameters


def dtype_flag(dtype: torch.dtype) -> str:
    """The ``--dtype`` value naming ``dtype``."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}.get(dtype, str(dtype))


def stream_model(
    model_cls: Any,
    config: dict[str, Any],
    tensors: Iterable[tuple[str, Tensor]],
    *,
    dtype: torch.dtype,
    device: torch.device,
    quantize: str = "none",
) -> torch.nn.Module:
    """Build ``model_cls`` from ``config`` and a stream of (name, tensor), quantizing as they arrive."""
    builder = StreamingBuilder(build_skeleton(model_cls, config), dtype=dtype, device=device, quantize=quantize)
    for key, value in tensors:
        builder.add(key, value)
    return builder.finish()


# ----------------------------------------------------------------------------------------- reading


def safetensors_keys(file: Path) -> list[str]:
    with safe_open(file, framework="pt") as f:
        return list(f.keys())


def read_safetensors(file: Path) -> Iterator[tuple[str, Tensor]]:
    """The tensors of one file, one at a time, torchao-flattened ones rebuilt as quantized tensors.

    The file is reopened for every tensor: safetensors memory-maps the whole file while it is open, and
    the pages of every tensor read would otherwise stay in this process's resident set (a 10 GB shard
    would count in full). A flattened torchao tensor (``<module>._weight_qdata``, ``_weight_scale``, ...
    described in the header metadata, the format diffusers writes for TorchAO models) is yielded once all
    its parts are in.
    """
    with safe_open(file, framework="pt") as f:
        keys = list(f.keys())
        metadata = f.metadata() or {}
    parts_of = _flattened_parts(metadata)
    gathered: dict[str, dict[str, Tensor]] = {}
    for key in keys:
        with safe_open(file, framework="pt") as f:
            value = f.get_tensor(key)
        if key not in parts_of:
            yield key, value
            continue
        name = parts_of[key]
        gathered.setdefault(name, {})[key] = value
        wanted = json.loads(metadata[name])["_tensor_data_names"]
        if len(gathered[name]) == len(wanted):
            yield name, _unflatten(name, gathered.pop(name), metadata)
    if gathered:
        raise WanimateError(f"{file.name} holds incomplete quantized tensors ({', '.join(sorted(gathered)[:3])})")


def _flattened_parts(metadata: dict[str, str]) -> dict[str, str]:
    """Stored key of each flattened part -> the tensor it belongs to (from torchao's header metadata)."""
    parts: dict[str, str] = {}
    for name, raw in metadata.items():
        if name in ("format", "tensor_names") or not raw.startswith("{"):
            continue
        entry = json.loads(raw)
        if entry.get("_type") in (None, "Tensor"):
            continue
        module, _, param = name.rpartition(".")
        for part in entry.get("_tensor_data_names", []):
            parts[f"{module}._{param}_{part}"] = name
    return parts


def _unflatten(name: str, parts: dict[str, Tensor], metadata: dict[str, str]) -> Tensor:
    from torchao.prototype.safetensors.safetensors_support import unflatten_tensor_state_dict

    result, _ = unflatten_tensor_state_dict(parts, {name: metadata[name], "tensor_names": json.dumps([name])})
    return result[name]
