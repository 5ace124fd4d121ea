"""The released MultiAnimate checkpoints: find the few tensors that matter in 37 GB of shards, read only those.

``N00B0DY/MultiAnimate`` ships each checkpoint as DeepSpeed's ``zero_to_fp32`` output of a Lightning
module: ``<name>.ckpt/output_dir/model-0000N-of-0000M.safetensors`` (+ an index), keys prefixed by
the training wrapper (``_forward_module.`` or none), probably also holding a frozen copy of the base
DiT and of the VAE/CLIP. Only three kinds of keys are read:

- ``…dwpose_embedding.*``, ``…label_embedding.*``, ``…randomref_embedding_pose.*``: the adapters
  (the part after the module name, as the reference's ``key.split(name + ".")``);
- ``…pipe.dit.blocks.N.<module>.lora_{A,B}[.default].weight``: the DiT LoRA (native module names,
  renamed to diffusers' with the DiT key map).

Everything else (``…base_layer.weight``, ``pipe_VAE.*``) is skipped by name. Shapes come from the
safetensors headers, so sizes (DiT width, ``max_p``, LoRA rank) are known before any tensor is read,
and tensors are read one at a time with ``safe_open`` when they are used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from wanimate.errors import WanimateError
from wanimate.models.official import dit_native_module_to_diffusers

ADAPTER_MODULES = ("dwpose_embedding", "label_embedding", "randomref_embedding_pose")
LORA_SCALE = 1.0  # the reference merges with load_lora_v2(lora_alpha=1.0): W += 1.0 * B @ A


@dataclass(frozen=True)
class Release:
    """One released checkpoint folder of the MultiAnimate hub repo."""

    repo: str
    folder: str
    max_characters: int


RELEASES = {
    "multianimate-3": Release("N00B0DY/MultiAnimate", "epoch=39-step=7000.ckpt", 3),
    "multianimate-7": Release("N00B0DY/MultiAnimate", "epoch=23-step=4200-multi.ckpt", 7),
}


def releases_text() -> str:
    return ", ".join(f"{name} (up to {r.max_characters})" for name, r in RELEASES.items())


@dataclass(frozen=True)
class TensorRef:
    file: Path
    key: str
    shape: tuple[int, ...]


@dataclass
class AdapterCheckpoint:
    """What a MultiAnimate checkpoint holds, from its headers; tensors are read on demand."""

    name: str  # as the user named it, for messages
    source: str  # identity for the resume key (hub repo@commit/folder, or a path with sizes)
    adapters: dict[str, TensorRef]  # e.g. "label_embedding.0.weight"
    lora: dict[str, tuple[TensorRef, TensorRef]] = field(default_factory=dict)  # diffusers module -> (A, B)

    @property
    def max_characters(self) -> int:
        return self.adapters["label_embedding.0.weight"].shape[1] - 1

    @property
    def dim(self) -> int:
        return self.adapters["dwpose_embedding.12.weight"].shape[0]

    @property
    def lora_rank(self) -> int | None:
        ranks = {a.shape[0] for a, _ in self.lora.values()}
        return ranks.pop() if len(ranks) == 1 else None


def checkpoint_files(path: Path) -> list[Path]:
    """The safetensors shards of a checkpoint file or folder (``<name>.ckpt/`` or its ``output_dir/``)."""
    if path.is_file():
        if path.suffix != ".safetensors":
            raise WanimateError(f"a MultiAnimate checkpoint file must be .safetensors, not {path.name}")
        return [path]
    for folder in (path, path / "output_dir"):
        for index in sorted(folder.glob("*.safetensors.index.json")):
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            missing = [n for n in names if not (folder / n).is_file()]
            if missing:
                raise WanimateError(f"{index} lists {missing[0]}, which is not in {folder}; the download is incomplete")
            return [folder / n for n in names]
        shards = sorted(folder.glob("*.safetensors"))
        if shards:
            return shards
    raise WanimateError(f"no .safetensors shards in {path} or {path / 'output_dir'}; is it a MultiAnimate checkpoint?")


def _adapter_key(key: str) -> str | None:
    for module in ADAPTER_MODULES:
        marker = f"{module}."
        if marker in key:
            return marker + key.split(marker, 1)[1]
    return None


_LORA = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])(?:\.default)?\.weight$")


def _lora_module(key: str) -> tuple[str, str] | None:
    """(native DiT module, "A"|"B") of a LoRA key, whatever the training wrapper's prefix."""
    match = _LORA.match(key)
    if match is None:
        return None
    module = match.group("module").split("pipe.dit.")[-1]
    module = module.removeprefix("_forward_module.").removeprefix("diffusion_model.").removeprefix("base_model.model.")
    return module, match.group("which")


def scan_checkpoint(files: list[Path], name: str, source: str) -> AdapterCheckpoint:
    """Index a checkpoint's adapter and LoRA tensors from the headers alone."""
    adapters: dict[str, TensorRef] = {}
    halves: dict[str, dict[str, TensorRef]] = {}
    for file in files:
        with safe_open(file, framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                ref = TensorRef(file, key, tuple(f.get_slice(key).get_shape()))
                if (short := _adapter_key(key)) is not None:
                    if short in adapters:
                        raise WanimateError(f"{name} holds {short} twice ({adapters[short].key} and {key})")
                    adapters[short] = ref
                elif (lora := _lora_module(key)) is not None:
                    module, which = lora
                    halves.setdefault(dit_native_module_to_diffusers(module), {})[which] = ref
    missing = [m for m in ADAPTER_MODULES if f"{m}.0.weight" not in adapters]
    if missing:
        raise WanimateError(
            f"{name} is not a MultiAnimate checkpoint: it has no {', '.join(missing)} weights "
            f"(released checkpoints: {releases_text()})"
        )
    unpaired = sorted(m for m, pair in halves.items() if set(pair) != {"A", "B"})
    if unpaired:
        raise WanimateError(f"{name} has LoRA weights without their other half for {unpaired[0]}")
    lora = {m: (pair["A"], pair["B"]) for m, pair in sorted(halves.items())}
    return AdapterCheckpoint(name=name, source=source, adapters=adapters, lora=lora)


class TensorReader:
    """Opens each shard once and reads single tensors out of it (nothing else is loaded)."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._open: dict[Path, object] = {}
        self.read: list[str] = []

    def get(self, ref: TensorRef) -> torch.Tensor:
        handle = self._open.get(ref.file)
        if handle is None:
            handle = self._stack.enter_context(safe_open(ref.file, framework="pt"))
            self._open[ref.file] = handle
        self.read.append(ref.key)
        return handle.get_tensor(ref.key)  # type: ignore[attr-defined]


@contextmanager
def tensor_reader() -> Iterator[TensorReader]:
    with ExitStack() as stack:
        yield TensorReader(stack)


def read_adapter_state(checkpoint: AdapterCheckpoint, reader: TensorReader) -> dict[str, torch.Tensor]:
    return {short: reader.get(ref) for short, ref in checkpoint.adapters.items()}


def merge_lora(transformer: torch.nn.Module, checkpoint: AdapterCheckpoint, reader: TensorReader) -> int:
    """Add ``B @ A`` (scale 1, as the reference's merge) into each targeted Linear; returns the layers merged.

    The product is formed in float32 on the weight's device and rounded once to the weight's dtype.
    """
    for module, (a_ref, b_ref) in checkpoint.lora.items():
        try:
            layer = transformer.get_submodule(module)
        except AttributeError:
            layer = None
        if not isinstance(layer, torch.nn.Linear):
            raise WanimateError(f"{checkpoint.name}: its LoRA targets {module!r}, which is not a Linear of this DiT")
        weight = layer.weight
        a_shape, b_shape = a_ref.shape, b_ref.shape
        if b_shape[0] != weight.shape[0] or a_shape[1] != weight.shape[1] or a_shape[0] != b_shape[1]:
            raise WanimateError(
                f"{checkpoint.name}: LoRA for {module} is {tuple(b_shape)} @ {tuple(a_shape)} but the layer is "
                f"{tuple(weight.shape)}; the checkpoint does not fit this base model"
            )
        a = reader.get(a_ref).to(weight.device, torch.float32)
        b = reader.get(b_ref).to(weight.device, torch.float32)
        with torch.no_grad():
            weight.copy_((weight.float() + LORA_SCALE * (b @ a)).to(weight.dtype))
    return len(checkpoint.lora)
