"""The sizes of the random-weight models (``random:tiny``, ``random:mid``, ``random:full``).

Kept apart from :mod:`wanimate.models.factory` (which builds them with torch and diffusers) so that
a command can check what a size supports, such as its largest frame, before importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from wanimate.errors import WanimateError


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of every component; ``transformer`` holds WanAnimateTransformer3DModel kwargs."""

    transformer: dict[str, Any]
    vae: dict[str, Any]
    text_d_model: int
    text_layers: int
    clip_hidden: int
    clip_layers: int
    clip_image_size: int
    vocab: list[str] = field(default_factory=lambda: [f"w{i}" for i in range(90)])


def _tiny() -> ModelConfig:
    return ModelConfig(
        transformer=dict(
            num_attention_heads=2,
            attention_head_dim=12,
            in_channels=36,
            latent_channels=16,
            out_channels=16,
            text_dim=32,
            freq_dim=256,
            ffn_dim=32,
            num_layers=2,
            image_dim=4,
            added_kv_proj_dim=24,
            rope_max_seq_len=32,
            motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16},
            motion_encoder_size=16,
            motion_style_dim=8,
            motion_dim=4,
            motion_encoder_dim=16,
            face_encoder_hidden_dim=16,
            face_encoder_num_heads=2,
            inject_face_latents_blocks=2,
            motion_encoder_batch_size=4,
        ),
        vae=dict(
            base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
        ),
        text_d_model=32,
        text_layers=2,
        clip_hidden=4,
        clip_layers=2,
        clip_image_size=32,
    )


def _tiny6() -> ModelConfig:
    """``tiny`` with 6 heads (same head size): sequence parallelism over 2, 3 or 6 ranks needs heads to shard."""
    cfg = _tiny()
    return replace(cfg, transformer={**cfg.transformer, "num_attention_heads": 6, "added_kv_proj_dim": 72})


def _mid() -> ModelConfig:
    return ModelConfig(
        transformer=dict(
            num_attention_heads=4,
            attention_head_dim=128,
            in_channels=36,
            latent_channels=16,
            out_channels=16,
            text_dim=64,
            freq_dim=256,
            ffn_dim=1536,
            num_layers=8,
            image_dim=64,
            added_kv_proj_dim=512,
            rope_max_seq_len=1024,
            motion_encoder_size=512,
            motion_style_dim=512,
            motion_dim=20,
            motion_encoder_dim=512,
            face_encoder_hidden_dim=256,
            face_encoder_num_heads=4,
            inject_face_latents_blocks=4,
            motion_encoder_batch_size=8,
        ),
        vae=dict(base_dim=96, z_dim=16),
        text_d_model=64,
        text_layers=2,
        clip_hidden=64,
        clip_layers=2,
        clip_image_size=224,
    )


def _full() -> ModelConfig:
    return ModelConfig(
        transformer=dict(
            num_attention_heads=40,
            attention_head_dim=128,
            in_channels=36,
            latent_channels=16,
            out_channels=16,
            text_dim=4096,
            freq_dim=256,
            ffn_dim=13824,
            num_layers=40,
            image_dim=1280,
            added_kv_proj_dim=5120,
            rope_max_seq_len=1024,
            motion_encoder_size=512,
            motion_style_dim=512,
            motion_dim=20,
            motion_encoder_dim=512,
            face_encoder_hidden_dim=1024,
            face_encoder_num_heads=4,
            inject_face_latents_blocks=5,
            motion_encoder_batch_size=8,
        ),
        vae=dict(base_dim=96, z_dim=16),
        text_d_model=4096,
        text_layers=1,
        clip_hidden=1280,
        clip_layers=2,
        clip_image_size=224,
    )


CONFIGS = {"tiny": _tiny, "tiny6": _tiny6, "mid": _mid, "full": _full}


def model_config(name: str) -> ModelConfig:
    if name not in CONFIGS:
        raise WanimateError(f"unknown model config {name!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]()
