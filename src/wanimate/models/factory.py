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

from wanimate.models.configs import ModelConfig, model_config
from wanimate.models.families import ANIMATE, ModelFamily


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
