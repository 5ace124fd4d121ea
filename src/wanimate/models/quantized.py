"""Pre-quantized transformer folders: how the quantization is recorded, checked and written.

``wanimate convert SRC DST --quantize int8|fp8`` writes the DiT already quantized, so a later load
reads half the bytes of bf16 and runs no quantization step. The folder is a diffusers transformer
folder:

- ``config.json`` records ``"_wanimate_quantization": {"mode": "int8"|"fp8", "dtype": "bfloat16"}``,
  the mode and the compute dtype it was made for (diffusers ignores ``_``-prefixed keys). An int8
  folder also carries diffusers' own ``quantization_config`` (TorchAO ``Int8WeightOnlyConfig``), so
  plain ``WanAnimateTransformer3DModel.from_pretrained`` loads it too.
- int8 weights are torchao ``Int8Tensor``s flattened by torchao's safetensors support
  (``<module>._weight_qdata``, ``_weight_scale``, ``_weight_zero_point`` plus header metadata): the
  format diffusers itself writes for TorchAO models. fp8 weights are stored as ``float8_e4m3fn``
  and get diffusers' layerwise casting again on load.

Shards are written as modules finish, so converting needs one shard plus one layer of memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.models.memory import tensor_bytes
from wanimate.models.streaming import QUANTIZED_PARENTS, StreamingBuilder, build_skeleton, dtype_flag

QUANTIZATION_KEY = "_wanimate_quantization"
SHARD_BYTES = 5 * 2**30  # diffusers' conversion script uses 5 GB shards too
WEIGHTS_NAME = "diffusion_pytorch_model"
DTYPE_NAMES = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}


def stored_quantization(config: dict[str, Any], where: str) -> tuple[str, torch.dtype | None]:
    """(mode, compute dtype) a transformer config records; ``("none", None)`` for plain weights."""
    record = config.get(QUANTIZATION_KEY)
    if record is None:
        if "quantization_config" in config:
            method = config["quantization_config"].get("quant_method", "?")
            raise WanimateError(
                f"{where} was quantized by another tool ({method}); wanimate loads plain weights or folders "
                "written by `wanimate convert --quantize`"
            )
        return "none", None
    mode, dtype = record.get("mode"), getattr(torch, str(record.get("dtype")), None)
    if mode not in ("int8", "fp8") or not isinstance(dtype, torch.dtype):
        raise WanimateError(f"{where} has an unreadable {QUANTIZATION_KEY} entry {record!r}")
    return mode, dtype


def resolve_quantize(requested: str, stored: str, where: str) -> str:
    """The mode to load with: what is stored, unless a different mode was asked for (an error)."""
    if stored == "none" or requested in ("none", stored):
        return stored if stored != "none" else requested
    raise WanimateError(
        f"{where} is pre-quantized to {stored}, so --quantize {requested} cannot apply; "
        f"drop --quantize (or pass --quantize {stored}), or load the unquantized weights to use {requested}"
    )


def check_stored_dtype(stored: torch.dtype | None, dtype: torch.dtype, where: str) -> None:
    if stored is not None and stored != dtype:
        name = dtype_flag(stored)
        raise WanimateError(f"{where} was quantized for {name} compute; load it with --dtype {name}")


def plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """The model's own config: without quantization records (``from_config`` would warn about them)."""
    return {k: v for k, v in config.items() if k not in (QUANTIZATION_KEY, "quantization_config")}


class ShardWriter:
    """Writes tensors into numbered safetensors shards of about ``shard_bytes``, plus the index.

    Quantized tensors are flattened per module as they arrive (torchao's own serialization); each
    shard's header lists every tensor name of the model, as diffusers' TorchAO loader expects.
    """

    def __init__(self, folder: Path, names: Iterable[str], *, torchao: bool, shard_bytes: int = SHARD_BYTES) -> None:
        self.folder = folder
        self.names = json.dumps(list(names))
        self.torchao = torchao
        self.shard_bytes = shard_bytes
        self._data: dict[str, torch.Tensor] = {}
        self._meta: dict[str, str] = {}
        self._size = 0
        self._written: list[tuple[Path, list[str]]] = []

    def add(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.torchao:
            from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict

            data, meta = flatten_tensor_state_dict(tensors)
            meta.pop("tensor_names")
        else:
            data, meta = {k: v.contiguous() for k, v in tensors.items()}, {}
        self._data.update(data)
        self._meta.update(meta)
        self._size += sum(t.numel() * t.element_size() for t in data.values())
        if self._size >= self.shard_bytes:
            self._flush()

    def _flush(self) -> None:
        from safetensors.torch import save_file

        if not self._data:
            return
        path = self.folder / f"shard-{len(self._written):05d}.partial"
        metadata = {"format": "pt"}
        if self.torchao:
            metadata.update(self._meta, tensor_names=self.names)
        save_file(self._data, path, metadata=metadata)
        self._written.append((path, list(self._data)))
        self._data, self._meta, self._size = {}, {}, 0

    def close(self, total_bytes: int) -> None:
        """Give the shards diffusers' names (their count is known only now) and write the index."""
        self._flush()
        count = len(self._written)
        weight_map: dict[str, str] = {}
        for i, (path, keys) in enumerate(self._written):
            name = (
                f"{WEIGHTS_NAME}.safetensors"
                if count == 1
                else f"{WEIGHTS_NAME}-{i + 1:05d}-of-{count:05d}.safetensors"
            )
            path.rename(self.folder / name)
            weight_map.update(dict.fromkeys(keys, name))
        if count > 1:
            index = {"metadata": {"total_size": total_bytes}, "weight_map": dict(sorted(weight_map.items()))}
            (self.folder / f"{WEIGHTS_NAME}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def write_transformer(
    model_cls: Any,
    config: dict[str, Any],
    tensors: Iterable[tuple[str, torch.Tensor]],
    out: Path,
    *,
    quantize: str = "none",
    dtype: torch.dtype | None = None,
    shard_bytes: int = SHARD_BYTES,
) -> None:
    """Write a transformer folder from a tensor stream; quantized (``dtype`` compute) or as stored.

    With ``quantize="none"`` and no ``dtype`` the tensors are written exactly as they arrive.
    Otherwise they go through the streaming builder and each finished module is written and dropped.
    """
    out.mkdir(parents=True)
    skeleton = build_skeleton(model_cls, plain_config(config))
    names = list(skeleton.state_dict())
    writer = ShardWriter(out, names, torchao=quantize == "int8", shard_bytes=shard_bytes)
    total = 0
    if quantize == "none" and dtype is None:
        expected, seen = set(names), set()
        for key, value in tensors:
            if key not in expected:
                raise WanimateError(f"the transformer checkpoint has an unexpected tensor {key!r}")
            writer.add({key: value})
            seen.add(key)
            total += value.numel() * value.element_size()
        if seen != expected:
            missing = sorted(expected - seen)
            raise WanimateError(f"the transformer checkpoint lacks {len(missing)} tensors (e.g. {missing[0]})")
    else:
        builder = StreamingBuilder(
            skeleton, dtype=dtype or torch.bfloat16, device=torch.device("cpu"), quantize=quantize
        )
        for key, value in tensors:
            finished = builder.add(key, value)
            if finished is not None:
                taken = builder.take(finished)
                total += sum(tensor_bytes(t) for t in taken.values())
                writer.add(taken)
        builder.finish()
    writer.close(total)
    skeleton.save_config(out)
    if quantize != "none":
        saved = json.loads((out / "config.json").read_text())
        saved[QUANTIZATION_KEY] = {"mode": quantize, "dtype": DTYPE_NAMES[dtype or torch.bfloat16]}
        if quantize == "int8":
            saved["quantization_config"] = _diffusers_int8_config(skeleton)
        (out / "config.json").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")


def _diffusers_int8_config(model: torch.nn.Module) -> dict[str, Any]:
    """diffusers' ``TorchAoConfig`` for what was quantized: every top-level module but the blocks' stays."""
    from diffusers import TorchAoConfig

    from wanimate.models.streaming import int8_config

    keep = [name for name, _ in model.named_children() if name not in QUANTIZED_PARENTS]
    return json.loads(json.dumps(TorchAoConfig(int8_config(), modules_to_not_convert=keep).to_dict(), default=str))
