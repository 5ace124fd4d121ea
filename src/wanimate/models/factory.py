"""Random-weight Wan pipelines of named sizes: Wan2.2-Animate-14B and the Wan2.1-I2V-14B base of MultiAnimate.

Tests and benchmarks need the real architecture without a 35 GB download. ``tiny``
runs a whole multi-segment generation in about a second on CPU; ``mid`` has a
realistic VAE and motion encoder with a small DiT; ``full`` is the 14B DiT config
(its text and image encoders are shrunk, since benchmarks feed them no real text).
The I2V transformer is the Animate config without the motion encoder and face
adapters: the two 14B models share their blocks. Every build is deterministic for a
given seed.

:mod:`wanimate.models.random_weights` builds the DiT layer by layer instead (quantized as it goes), which
is how ``full`` exists in int8 without ever existing in full precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
    WanAnimatePipeline,
    WanAnimateTransformer3DModel,
    WanImageToVideoPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedTokenizerFast,
    UMT5Config,
    UMT5EncoderModel,
)

from wanimate.errors import WanimateError
from wanimate.models.families import ANIMATE, ModelFamily


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


CONFIGS = {"tiny": _tiny, "mid": _mid, "full": _full}


def model_config(name: str) -> ModelConfig:
    if name not in CONFIGS:
        raise WanimateError(f"unknown model config {name!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[name]()


def build_tokenizer(vocab: list[str]) -> PreTrainedTokenizerFast:
    """A fixed word-level tokenizer: deterministic, offline, enough to exercise the text path."""
    special = ["<pad>", "</s>", "<unk>"]
    table = {tok: i for i, tok in enumerate(special + vocab)}
    backend = Tokenizer(models.WordLevel(vocab=table, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def build_scheduler(shift: float = 5.0) -> UniPCMultistepScheduler:
    """The Wan-Animate sampler as diffusers configures it (flow-matching UniPC)."""
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift, num_train_timesteps=1000
    )


def build_transformer(cfg: ModelConfig, seed: int = 0) -> WanAnimateTransformer3DModel:
    """The random DiT of ``cfg`` built whole, with torch's and diffusers' own init (what the tests use)."""
    torch.manual_seed(seed)
    return WanAnimateTransformer3DModel(**cfg.transformer).eval()


# WanAnimateTransformer3DModel arguments that belong to the motion encoder and face adapters.
_ANIMATE_ONLY = ("latent_channels", "motion_", "face_", "inject_face_latents_blocks")


def i2v_transformer_config(cfg: ModelConfig) -> dict[str, Any]:
    """The ``WanTransformer3DModel`` kwargs of a size: the Animate DiT minus the motion and face parts."""
    return {k: v for k, v in cfg.transformer.items() if not k.startswith(_ANIMATE_ONLY)}


def build_i2v_transformer(cfg: ModelConfig, seed: int = 0) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    return WanTransformer3DModel(**i2v_transformer_config(cfg)).eval()


def _components(cfg: ModelConfig, seed: int) -> dict[str, Any]:
    """Tokenizer, umT5, CLIP tower, image processor and VAE of a size, each seeded on its own."""
    tokenizer = build_tokenizer(cfg.vocab)
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=cfg.text_d_model,
            d_kv=max(cfg.text_d_model // 4, 8),
            d_ff=cfg.text_d_model * 2,
            num_layers=cfg.text_layers,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    ).eval()
    torch.manual_seed(seed + 1)
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=cfg.clip_hidden,
            projection_dim=cfg.clip_hidden,
            num_hidden_layers=cfg.clip_layers,
            num_attention_heads=2 if cfg.clip_hidden < 64 else 8,
            image_size=cfg.clip_image_size,
            intermediate_size=cfg.clip_hidden * 4,
            patch_size=14,
        )
    ).eval()
    image_processor = CLIPImageProcessor(crop_size=cfg.clip_image_size, size={"shortest_edge": cfg.clip_image_size})
    torch.manual_seed(seed + 2)
    vae = AutoencoderKLWan(**cfg.vae).eval()
    return dict(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        image_processor=image_processor,
        image_encoder=image_encoder,
    )


def build_pipeline(name: str = "tiny", seed: int = 0, with_transformer: bool = True) -> WanAnimatePipeline:
    """A complete random-weight pipeline; components are seeded one by one so each is reproducible alone."""
    cfg = model_config(name)
    parts = _components(cfg, seed)
    transformer = build_transformer(cfg, seed + 3) if with_transformer else None
    return WanAnimatePipeline(scheduler=build_scheduler(), transformer=transformer, **parts)


def build_i2v_pipeline(name: str = "tiny", seed: int = 0, with_transformer: bool = True) -> WanImageToVideoPipeline:
    """A random Wan2.1-I2V pipeline of a size (MultiAnimate's base), seeded like :func:`build_pipeline`."""
    cfg = model_config(name)
    parts = _components(cfg, seed)
    transformer = build_i2v_transformer(cfg, seed + 3) if with_transformer else None
    return WanImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=transformer, **parts
    )


def build_family_pipeline(family: ModelFamily, name: str, seed: int = 0, with_transformer: bool = True) -> Any:
    """``random:<name>`` for a family: the Animate pipeline or the Wan2.1-I2V one."""
    build = build_pipeline if family is ANIMATE else build_i2v_pipeline
    return build(name, seed, with_transformer)
