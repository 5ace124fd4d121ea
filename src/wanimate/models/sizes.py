"""What each component of some weights will occupy, known before any weight is read.

Budget planning (:mod:`wanimate.models.budget`) has to choose the quantization *before* loading, since
the loader quantizes while it streams. The DiT's bytes under each quantize mode are counted on a
meta-device skeleton quantized exactly as the loader would quantize it; the encoders' sizes come from
their checkpoint headers (safetensors headers, memory-mapped ``.pth`` files) or, for random models, from
their configs on the meta device.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wanimate.models.families import ANIMATE, ModelFamily
from wanimate.models.memory import tensor_bytes
from wanimate.models.quantized import plain_config, stored_quantization
from wanimate.models.streaming import (
    FLOAT8,
    QUANTIZE_MODES,
    build_skeleton,
    int8_config,
    param_dtype,
    quantizable_linear,
)

# Wan2.2-Animate-14B's components other than the DiT, in parameters (umT5-XXL encoder, CLIP ViT-H/14,
# Wan2.1 VAE), used where the weights are not at hand (the VRAM table in docs/performance.md).
TEXT_ENCODER_PARAMS = 5_680_000_000
IMAGE_ENCODER_PARAMS = 630_000_000
VAE_PARAMS = 127_000_000
REAL_ENCODERS = (TEXT_ENCODER_PARAMS, IMAGE_ENCODER_PARAMS, VAE_PARAMS)


@dataclass(frozen=True)
class ModelSizes:
    """Bytes each component will hold.

    ``dit`` maps a quantize mode to the DiT's bytes as held (every mode maps to the stored size when
    the weights are pre-quantized, ``stored``); ``dit_load_transient`` is the largest tensor in flight
    while streaming the DiT in (read as float32, cast, quantized).
    """

    dit: dict[str, int]
    dit_load_transient: int
    text_encoder: int
    image_encoder: int
    vae: int
    dim: int
    ffn_dim: int
    act_bytes: int  # bytes per activation element (the compute dtype)
    stored: str = "none"


def _element(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def dit_sizes(model_cls: Any, config: dict[str, Any], dtype: torch.dtype) -> tuple[dict[str, int], int]:
    """(bytes per quantize mode, largest-tensor transient) of a DiT config, counted on the meta device.

    fp8 is diffusers' layerwise casting applied to the skeleton itself (it only changes dtypes). int8
    is counted from torchao's layout as measured on one small real layer (bytes per weight and per
    output row), since quantizing 17B meta weights through torch's reference ops takes minutes.
    """
    model = build_skeleton(model_cls, config)
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    saved = model.state_dict(keep_vars=True)
    # Buffers computed at construction (RoPE tables, blur kernels) stay as built.
    built = sum(b.numel() * b.element_size() for n, b in model.named_buffers() if n not in saved)
    plain = {name: t.numel() * _element(param_dtype(name, dtype, keep)) for name, t in saved.items()}
    per_weight, per_row = _int8_layout(dtype)
    int8 = dict(plain)
    for name, module in model.named_modules():
        if quantizable_linear(module, name):
            int8[f"{name}.weight"] = module.weight.numel() * per_weight + module.out_features * per_row
    model.enable_layerwise_casting(storage_dtype=FLOAT8, compute_dtype=dtype)
    cast = model.state_dict(keep_vars=True)
    fp8 = {name: t.numel() if t.dtype == FLOAT8 else plain[name] for name, t in cast.items()}
    sizes = {"none": plain, "fp8": fp8, "int8": int8}
    largest = max(t.numel() for t in saved.values())
    return {mode: built + sum(sizes[mode].values()) for mode in QUANTIZE_MODES}, largest * (4 + _element(dtype) + 1)


@functools.cache
def _int8_layout(dtype: torch.dtype) -> tuple[int, int]:
    """torchao's int8 weight-only bytes per weight and per output row, measured on small real layers."""
    from torchao.quantization import quantize_

    def held(rows: int, cols: int) -> int:
        layer = torch.nn.Linear(cols, rows, bias=False, dtype=dtype)
        quantize_(layer, int8_config())
        return tensor_bytes(layer.weight)

    # held(rows, cols) = rows * cols * per_weight + rows * per_row
    base = held(4, 16)
    per_weight = (held(4, 32) - base) // 64
    per_row = (held(8, 16) - base - 64 * per_weight) // 4
    return per_weight, per_row


def model_sizes(
    model_cls: Any,
    config: dict[str, Any],
    dtype: torch.dtype,
    encoder_params: tuple[int, int, int],
    stored: str = "none",
) -> ModelSizes:
    """Sizes of a model from its DiT config and its encoders' parameter counts (text, image, VAE)."""
    text, image, vae = encoder_params
    dit, transient = dit_sizes(model_cls, config, dtype)
    if stored != "none":
        dit = dict.fromkeys(dit, dit[stored])
    return ModelSizes(
        dit=dit,
        dit_load_transient=transient,
        text_encoder=text * _element(dtype),
        image_encoder=image * _element(dtype),
        vae=vae * 4,  # the VAE always runs in float32
        dim=config["num_attention_heads"] * config["attention_head_dim"],
        ffn_dim=config["ffn_dim"],
        act_bytes=_element(dtype),
        stored=stored,
    )


def folder_encoder_params(folder: Path, layout: str) -> tuple[int, int, int]:
    """Parameter counts of the text encoder, image encoder and VAE of a resolved weights folder."""
    from wanimate.models import official_io

    if layout == "official":
        counts = []
        for name, prefix in ((official_io.T5_FILE, ""), (official_io.CLIP_FILE, "visual."), (official_io.VAE_FILE, "")):
            state = official_io.safe_torch_load(folder / name)  # memory-mapped: only the headers are read
            counts.append(sum(v.numel() for k, v in state.items() if k.startswith(prefix)))
        return counts[0], counts[1], counts[2]
    parts = []
    for part in ("text_encoder", "image_encoder", "vae"):
        files = sorted((folder / part).glob("*.safetensors"))
        parts.append(sum(s.numel() for s in official_io.safetensors_shapes(files).values()))
    return parts[0], parts[1], parts[2]


def random_encoder_params(name: str) -> tuple[int, int, int]:
    """Parameter counts of a random pipeline's encoders, built on the meta device."""
    from accelerate import init_empty_weights

    from wanimate.models.factory import build_pipeline

    with init_empty_weights():
        pipe = build_pipeline(name, with_transformer=False)
    return tuple(sum(p.numel() for p in m.parameters()) for m in (pipe.text_encoder, pipe.image_encoder, pipe.vae))  # type: ignore[return-value]


def pipeline_sizes(pipe: Any, dtype: torch.dtype) -> ModelSizes:
    """Sizes of an already-loaded pipeline (its DiT config, its encoders' parameter counts)."""
    from wanimate.models.memory import transformer_quantization

    counts = tuple(sum(p.numel() for p in m.parameters()) for m in (pipe.text_encoder, pipe.image_encoder, pipe.vae))
    config = {k: v for k, v in dict(pipe.transformer.config).items() if not k.startswith("_")}
    stored = transformer_quantization(pipe.transformer)
    return model_sizes(type(pipe.transformer), config, dtype, counts, stored)  # type: ignore[arg-type]


def weights_sizes(
    weights: str | Path | None = None,
    *,
    family: ModelFamily = ANIMATE,
    dtype: torch.dtype = torch.bfloat16,
    base: str | None = None,
    revision: str | None = None,
    progress: bool = True,
) -> ModelSizes:
    """What :func:`load_model` with these arguments will hold, per quantize mode, before loading it.

    Reads configs and checkpoint headers only (a hub repo is resolved, as loading would).
    """
    from wanimate.models import loading

    weights = str(weights) if weights is not None else family.default_repo
    if weights.startswith("random:"):
        from wanimate.models.factory import i2v_transformer_config, model_config

        name = weights.removeprefix("random:")
        cfg = model_config(name)
        config = cfg.transformer if family is ANIMATE else i2v_transformer_config(cfg)
        encoders = random_encoder_params(name)
        return model_sizes(family.transformer_cls(), config, dtype, encoders)
    single = Path(weights).expanduser().is_file()
    with loading.progress_bars(progress):
        if single:
            where = loading.resolve_folder(base or family.default_repo, None, progress, family)
        else:
            where = loading.resolve_folder(weights, revision, progress, family)
    config = loading.transformer_config(where.folder, where.load_as, family)
    stored = "none" if single else stored_quantization(config, str(where.folder))[0]
    encoders = folder_encoder_params(where.folder, where.load_as)
    return model_sizes(family.transformer_cls(), plain_config(config), dtype, encoders, stored)
