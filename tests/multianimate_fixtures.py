"""Tiny MultiAnimate models, checkpoints in the two released layouts, and the demo layout, for the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from wanimate.materials.characters import CharacterMaterials
from wanimate.models.official import dit_diffusers_module_to_native
from wanimate.video import iter_frames

# What MultiAnimate's peft config targets, as diffusers names them (§1.5 of the facts note).
LORA_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ffn.net.0.proj", "ffn.net.2")  # fmt: skip
RELEASE_3 = "epoch=39-step=7000.ckpt"
RELEASE_7 = "epoch=23-step=4200-multi.ckpt"


def random_lora(transformer: torch.nn.Module, rank: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """PEFT-style LoRA tensors on native module names (``blocks.0.self_attn.q.lora_A.default.weight``)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for index in range(len(transformer.blocks)):
        for target in LORA_TARGETS:
            layer = transformer.get_submodule(f"blocks.{index}.{target}")
            native = dit_diffusers_module_to_native(f"blocks.{index}.{target}")
            out[f"{native}.lora_A.default.weight"] = torch.randn(rank, layer.in_features, generator=g) * 0.1
            out[f"{native}.lora_B.default.weight"] = torch.randn(layer.out_features, rank, generator=g) * 0.1
    return out


def widen_labels(adapter_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The 4->8 label-channel remap the 7-character release was trained from: channels tiled [0,1,2,3,0,1,2,3]."""
    out = dict(adapter_state)
    weight = adapter_state["label_embedding.0.weight"]
    out["label_embedding.0.weight"] = torch.cat([weight, weight], dim=1).clone()
    return out


def write_release(
    root: Path,
    release: str,
    adapters: dict[str, torch.Tensor],
    lora: dict[str, torch.Tensor],
    transformer: torch.nn.Module,
    *,
    prefix: str,
    shards: int,
    index: bool,
) -> Path:
    """A checkpoint laid out like ``N00B0DY/MultiAnimate``: ``<release>/output_dir/model-0000N-of-0000M``.

    Beside the adapters and the LoRA it holds what the real shards are believed to hold and the loader
    must skip: the frozen base DiT under peft's ``base_layer`` names, and VAE/CLIP copies.
    """
    folder = root / release / "output_dir"
    folder.mkdir(parents=True)
    tensors = {f"{prefix}{k}": v.contiguous() for k, v in adapters.items()}
    tensors.update({f"{prefix}pipe.dit.{k}": v.contiguous() for k, v in lora.items()})
    for name, param in transformer.named_parameters():
        module, _, kind = name.rpartition(".")
        native = dit_diffusers_module_to_native(module)
        tensors[f"{prefix}pipe.dit.{native}.base_layer.{kind}"] = param.detach().clone()
    tensors[f"{prefix}pipe_VAE.vae.encoder.conv1.weight"] = torch.zeros(4, 3, 3, 3, 3)
    tensors[f"{prefix}pipe_VAE.image_encoder.model.visual.cls_embedding"] = torch.zeros(1, 1, 8)
    keys = sorted(tensors)
    per = -(-len(keys) // shards)
    weight_map = {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: tensors[k] for k in keys[i * per : (i + 1) * per]}
        save_file(part, folder / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    if index:
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return root / release


def merged_reference(transformer: torch.nn.Module, lora: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The base state with ``W += B @ A`` for every LoRA pair (the reference's merge at scale 1)."""
    state = {k: v.clone() for k, v in transformer.state_dict().items()}
    for name in state:
        module = name.removesuffix(".weight")
        native = dit_diffusers_module_to_native(module)
        a = lora.get(f"{native}.lora_A.default.weight")
        if a is not None and name.endswith(".weight"):
            state[name] = state[name] + lora[f"{native}.lora_B.default.weight"] @ a
    return state


def write_demo_layout(materials: CharacterMaterials, root: Path) -> Path:
    """The same materials as MultiAnimate's demo data: source_frames/, pose/ (+ pose.jpg), masks/<person>/."""
    (root / "source_frames").mkdir(parents=True)
    (root / "pose").mkdir()
    Image.fromarray(materials.reference()).save(root / "source_frames" / "0000.png")
    Image.fromarray(materials.reference_pose()).save(root / "pose" / "pose.jpg", quality=100, subsampling=0)
    names = [f"{t:04d}.png" for t in range(materials.num_frames)]
    for name, frame in zip(names, iter_frames(materials.pose.files[0]), strict=True):
        Image.fromarray(frame).save(root / "pose" / name)
    for i, mask in enumerate(materials.masks):
        person = root / "masks" / f"person_{chr(ord('a') + i)}"
        person.mkdir(parents=True)
        for name, frame in zip(names, iter_frames(mask.files[0]), strict=True):
            Image.fromarray(frame[..., 0]).save(person / name)  # grayscale (L), as the demo's must be
    return root


def frames_of(path: Path) -> np.ndarray:
    """All frames of a video ``(T, H, W, 3)`` uint8."""
    return np.stack(list(iter_frames(path)))
