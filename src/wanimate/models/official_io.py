"""Reading an official-layout Wan folder (Wan2.2-Animate-14B or Wan2.1-I2V-14B) into diffusers components.

Everything here streams: DiT tensors are converted and assigned one at a time into a model built on the
meta device (:mod:`wanimate.models.streaming`, quantizing as they arrive when asked), and pickled
``.pth`` files are memory-mapped, so the 35 GB DiT never exists in full precision unless it is kept so.
Pickles are opened only with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from wanimate.errors import WanimateError
from wanimate.models import official
from wanimate.models.families import ANIMATE, ModelFamily, check_official
from wanimate.models.streaming import read_safetensors, stream_model

DIT_CONFIG = "config.json"
VAE_FILE = "Wan2.1_VAE.pth"
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
T5_TOKENIZER = "google/umt5-xxl"
CLIP_FILE = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
LORA_FILE = "relighting_lora.ckpt"
LORA_PEFT_DIR = "relighting_lora"
OFFICIAL_FILES = (DIT_CONFIG, "diffusion_pytorch_model*.safetensors", VAE_FILE, T5_FILE, T5_TOKENIZER + "/", CLIP_FILE)

Tensor = torch.Tensor


def safe_torch_load(path: Path) -> dict[str, Any]:
    """``torch.load`` that can only rebuild tensors and plain containers, memory-mapped when possible."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise WanimateError(
            f"refusing to load {path}: it holds pickled objects other than tensors ({str(exc).splitlines()[0]})"
        ) from exc
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise WanimateError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from exc
    # Legacy (pre-zipfile) archives cannot be memory-mapped; still tensors only.
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WanimateError(f"refusing to load {path}: it holds pickled objects other than tensors") from exc


def find_relight_lora(folder: Path) -> Path | None:
    """The relighting LoRA shipped in ``folder``: the native ``.ckpt`` first, else the PEFT folder."""
    if (folder / LORA_FILE).is_file():
        return folder / LORA_FILE
    if (folder / LORA_PEFT_DIR / "adapter_model.safetensors").is_file():
        return folder / LORA_PEFT_DIR
    return None


def dit_shards(folder: Path) -> list[Path]:
    """The DiT shard files, from the index when there is one (so stray files are ignored)."""
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / n for n in names]
    return sorted(folder.glob("diffusion_pytorch_model*.safetensors"))


def safetensors_shapes(files: Iterable[Path]) -> dict[str, torch.Size]:
    """Tensor shapes from safetensors headers only (no tensor data is read)."""
    shapes: dict[str, torch.Size] = {}
    for file in files:
        with safe_open(file, framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                shapes[key] = torch.Size(f.get_slice(key).get_shape())
    return shapes


def official_dit_config(folder: Path, family: ModelFamily = ANIMATE) -> dict[str, Any]:
    """The diffusers transformer config of an official folder (its ``config.json`` plus shard shapes).

    A DiT of another family is refused here, before any tensor is read.
    """
    cfg = json.loads((folder / DIT_CONFIG).read_text())
    shapes = safetensors_shapes(dit_shards(folder))
    check_official(family, cfg, set(shapes), str(folder))
    return family.diffusers_config(cfg, shapes)


def load_official_transformer(
    folder: Path, dtype: torch.dtype, device: torch.device, family: ModelFamily = ANIMATE, quantize: str = "none"
) -> Any:
    """The family's DiT from native-keyed shards, renamed tensor by tensor and quantized as it streams in."""
    shards = dit_shards(folder)
    all_keys = list(safetensors_shapes(shards))
    config = official_dit_config(folder, family)

    def tensors() -> Iterator[tuple[str, Tensor]]:
        for shard in shards:
            yield from official.dit_native_to_diffusers(read_safetensors(shard), all_keys)

    return stream_model(family.transformer_cls(), config, tensors(), dtype=dtype, device=device, quantize=quantize)


def load_official_vae(folder: Path) -> Any:
    """The Wan2.1 VAE in float32 (the official pipeline runs it in float32 too)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan

    native = safe_torch_load(folder / VAE_FILE)
    cfg = official.vae_config({k: v.shape for k, v in native.items()})
    with init_empty_weights():
        vae = AutoencoderKLWan(**cfg)
    state = {official.vae_native_to_diffusers_key(k, cfg["num_res_blocks"]): v.float() for k, v in native.items()}
    result = vae.load_state_dict(state, strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        bad = (result.missing_keys or result.unexpected_keys)[0]
        raise WanimateError(
            f"{folder / VAE_FILE} does not match the Wan2.1 VAE layout ({len(result.missing_keys)} missing, "
            f"{len(result.unexpected_keys)} unexpected tensors, e.g. {bad})"
        )
    return vae.eval().requires_grad_(False)


def load_official_text_encoder(folder: Path, dtype: torch.dtype | None) -> Any:
    """umT5 encoder in ``dtype`` (``None``: as stored, bf16 for the real file)."""
    from transformers import UMT5Config, UMT5EncoderModel

    native = safe_torch_load(folder / T5_FILE)
    config = UMT5Config(**official.t5_config({k: v.shape for k, v in native.items()}))
    state = {new: v for k, v in native.items() if (new := official.t5_native_to_hf_key(k)) is not None}
    state["encoder.embed_tokens.weight"] = state["shared.weight"]
    return _hf_from_state(UMT5EncoderModel, config, state, dtype)


def load_official_image_encoder(folder: Path, dtype: torch.dtype | None) -> Any:
    """The CLIP ViT tower of the open-clip checkpoint in ``dtype`` (``None``: as stored)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    native = {k: v for k, v in safe_torch_load(folder / CLIP_FILE).items() if k.startswith("visual.")}
    config = CLIPVisionConfig(**official.clip_config({k: v.shape for k, v in native.items()}))
    return _hf_from_state(CLIPVisionModel, config, dict(official.clip_native_to_hf(native.items())), dtype)


def official_image_processor(image_encoder: Any) -> Any:
    """The official CLIP preprocessing: squash (no crop) to the tower's size, bicubic, CLIP mean/std."""
    from transformers import CLIPImageProcessor

    size = int(image_encoder.config.image_size)
    return CLIPImageProcessor(
        size={"height": size, "width": size},
        do_center_crop=False,
        crop_size={"height": size, "width": size},
        resample=3,
        image_mean=official.CLIP_MEAN,
        image_std=official.CLIP_STD,
    )


def load_official_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder / T5_TOKENIZER)


def _hf_from_state(cls: Any, config: Any, state: dict[str, Tensor], dtype: torch.dtype | None) -> Any:
    """transformers' own loader (and its fp32-module rules), fed an in-memory state dict."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        probe = cls(config)
    expected = set(probe.state_dict())
    if not any(k in expected for k in state):
        # transformers < 5 nests the CLIP tower under ``vision_model.``
        state = {f"vision_model.{k}": v for k, v in state.items()}
    missing = sorted(expected - set(state))
    if missing:
        raise WanimateError(f"{cls.__name__} checkpoint lacks {len(missing)} tensors (e.g. {missing[0]})")
    dtype = dtype or next(iter(state.values())).dtype
    model = cls.from_pretrained(None, config=config, state_dict=state, torch_dtype=dtype)
    return model.eval().requires_grad_(False)
