"""Write a diffusers ``WanAnimatePipeline`` in the official Wan2.2-Animate folder layout.

This is the inverse of :mod:`wanimate.models.official_io`. It exists so small random pipelines can be
saved exactly as the official release is laid out (native key names, ``.pth`` pickles, sharded DiT),
which is how the loader and the key maps are tested without the 60 GB download.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from wanimate.models import official, official_io


def save_official(pipeline: Any, folder: Path, *, dit_shards: int = 2) -> Path:
    """Save ``pipeline`` under ``folder`` with the official file names and native keys."""
    save_official_dit(pipeline.transformer, folder, dit_shards=dit_shards)

    nrb = pipeline.vae.config.num_res_blocks
    vae = {official.vae_diffusers_to_native_key(k, nrb): v.clone() for k, v in pipeline.vae.state_dict().items()}
    torch.save(vae, folder / official_io.VAE_FILE)

    t5 = {
        new: v.clone()
        for k, v in pipeline.text_encoder.state_dict().items()
        if (new := official.t5_hf_to_native_key(k)) is not None
    }
    torch.save(t5, folder / official_io.T5_FILE)
    pipeline.tokenizer.save_pretrained(folder / official_io.T5_TOKENIZER)

    clip_state = {k.removeprefix("vision_model."): v for k, v in pipeline.image_encoder.state_dict().items()}
    clip = {k: v.clone() for k, v in official.clip_hf_to_native(clip_state.items())}
    # The real file also holds the XLM-RoBERTa text tower and the logit scale, which loading ignores.
    clip["log_scale"] = torch.tensor(4.6052)
    clip["textual.head.0.weight"] = torch.zeros(2, 2)
    torch.save(clip, folder / official_io.CLIP_FILE)
    return folder


def save_official_dit(transformer: Any, folder: Path, *, dit_shards: int = 2) -> Path:
    """Only the DiT, as the official ``config.json`` plus native-keyed safetensors shards and index."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / official_io.DIT_CONFIG).write_text(
        json.dumps(official.dit_official_config(transformer.config), indent=2) + "\n"
    )
    native = {
        k: v.detach().clone().contiguous()
        for k, v in official.dit_diffusers_to_native(transformer.state_dict().items())
    }
    _save_shards(native, folder, dit_shards)
    return folder


def _save_shards(tensors: dict[str, torch.Tensor], folder: Path, count: int) -> None:
    keys = sorted(tensors)
    per = -(-len(keys) // count)
    weight_map: dict[str, str] = {}
    for i in range(count):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{count:05d}.safetensors"
        part = {k: tensors[k] for k in keys[i * per : (i + 1) * per]}
        save_file(part, folder / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
