"""The official <-> diffusers key maps, checked on the real 14B key lists (built on the meta device)."""

from __future__ import annotations

import re

import pytest
import torch
from diffusers import AutoencoderKLWan, WanAnimateTransformer3DModel
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers, convert_wan_vae_to_diffusers
from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

from wanimate.models import official
from wanimate.models.factory import model_config

# facts §2.2: every tensor name of the official Wan2.2-Animate-14B DiT checkpoint
NATIVE_DIT_PATTERNS = [
    r"(patch_embedding|pose_patch_embedding)\.(weight|bias)",
    r"(text_embedding|time_embedding)\.[02]\.(weight|bias)",
    r"time_projection\.1\.(weight|bias)",
    r"img_emb\.proj\.[0134]\.(weight|bias)",
    r"head\.head\.(weight|bias)",
    r"head\.modulation",
    r"blocks\.\d+\.self_attn\.[qkvo]\.(weight|bias)",
    r"blocks\.\d+\.self_attn\.norm_[qk]\.weight",
    r"blocks\.\d+\.cross_attn\.(q|k|v|o|k_img|v_img)\.(weight|bias)",
    r"blocks\.\d+\.cross_attn\.(norm_q|norm_k|norm_k_img)\.weight",
    r"blocks\.\d+\.norm3\.(weight|bias)",
    r"blocks\.\d+\.ffn\.[02]\.(weight|bias)",
    r"blocks\.\d+\.modulation",
    r"motion_encoder\.enc\.net_app\.convs\.0\.(0\.weight|1\.bias)",
    r"motion_encoder\.enc\.net_app\.convs\.[1-7]\."
    r"(conv1\.0\.weight|conv1\.1\.bias|conv2\.0\.kernel|conv2\.1\.weight|conv2\.2\.bias|skip\.0\.kernel|skip\.1\.weight)",
    r"motion_encoder\.enc\.net_app\.convs\.8\.weight",
    r"motion_encoder\.enc\.fc\.[0-4]\.(weight|bias)",
    r"motion_encoder\.dec\.direction\.weight",
    r"face_encoder\.(conv1_local|conv2|conv3)\.conv\.(weight|bias)",
    r"face_encoder\.out_proj\.(weight|bias)",
    r"face_encoder\.padding_tokens",
    r"face_adapter\.fuser_blocks\.[0-7]\.(linear1_kv|linear1_q|linear2)\.(weight|bias)",
    r"face_adapter\.fuser_blocks\.[0-7]\.(q_norm|k_norm)\.weight",
]


@pytest.fixture(scope="module")
def full_dit() -> WanAnimateTransformer3DModel:
    with torch.device("meta"):
        return WanAnimateTransformer3DModel(**model_config("full").transformer)


def test_every_14b_dit_key_maps_to_an_official_name_and_back(full_dit: WanAnimateTransformer3DModel) -> None:
    diffusers_sd = full_dit.state_dict()
    native = dict(official.dit_diffusers_to_native(diffusers_sd.items()))
    unmatched = [k for k in native if not any(re.fullmatch(p, k) for p in NATIVE_DIT_PATTERNS)]
    assert unmatched == []
    # the real checkpoint's counts: 40 blocks x 32 tensors, 8 face blocks x 8, 2 blur kernels x 7 res blocks
    assert sum(k.startswith("blocks.") for k in native) == 40 * 32
    assert sum(k.startswith("face_adapter.") for k in native) == 8 * 8
    assert sum(".kernel" in k for k in native) == 14

    back = dict(official.dit_native_to_diffusers(native.items(), native.keys()))
    assert back.keys() == diffusers_sd.keys()
    assert all(back[k].shape == v.shape for k, v in diffusers_sd.items())


def test_dit_map_agrees_with_diffusers_single_file_converter(full_dit: WanAnimateTransformer3DModel) -> None:
    native = dict(official.dit_diffusers_to_native(full_dit.state_dict().items()))
    ours = dict(official.dit_native_to_diffusers(native.items(), native.keys()))
    theirs = convert_wan_transformer_to_diffusers(dict(native))
    theirs = {k: v for k, v in theirs.items() if not k.endswith(".kernel")}  # diffusers leaves them unused
    assert ours.keys() == theirs.keys()
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    # ComfyUI files prefix every key; both converters strip it
    comfy = {official.COMFY_PREFIX + k: v for k, v in native.items()}
    assert dict(official.dit_native_to_diffusers(comfy.items(), comfy.keys())).keys() == ours.keys()


def test_dit_config_is_recovered_from_official_config_and_shapes(full_dit: WanAnimateTransformer3DModel) -> None:
    native = dict(official.dit_diffusers_to_native(full_dit.state_dict().items()))
    cfg = official.dit_diffusers_config(
        official.dit_official_config(full_dit.config), {k: v.shape for k, v in native.items()}
    )
    expected = model_config("full").transformer
    assert {k: cfg[k] for k in expected} == expected
    assert cfg["motion_encoder_channel_sizes"] is None  # the 512 px encoder uses diffusers' default table


def test_dit_tensor_values_split_and_reshape_exactly() -> None:
    kv = torch.arange(24.0).reshape(6, 4)
    bias = torch.arange(5.0).reshape(1, 5, 1, 1)
    native = {
        "face_adapter.fuser_blocks.0.linear1_kv.weight": kv,
        "motion_encoder.enc.net_app.convs.0.1.bias": bias,
        "motion_encoder.enc.net_app.convs.2.weight": torch.zeros(1),
    }
    out = dict(official.dit_native_to_diffusers(native.items(), native.keys()))
    assert torch.equal(out["face_adapter.0.to_k.weight"], kv[:3])
    assert torch.equal(out["face_adapter.0.to_v.weight"], kv[3:])
    assert torch.equal(out["motion_encoder.conv_in.act_fn.bias"], torch.arange(5.0))
    assert "motion_encoder.conv_out.weight" in out
    again = dict(official.dit_diffusers_to_native(out.items()))
    assert torch.equal(again["face_adapter.fuser_blocks.0.linear1_kv.weight"], kv)
    assert torch.equal(again["motion_encoder.enc.net_app.convs.0.1.bias"], bias)


def test_vae_map_matches_diffusers_converter_key_by_key() -> None:
    with torch.device("meta"):
        vae = AutoencoderKLWan(**model_config("full").vae)
    nrb = vae.config.num_res_blocks
    for key in vae.state_dict():
        native = official.vae_diffusers_to_native_key(key, nrb)
        assert official.vae_native_to_diffusers_key(native, nrb) == key
        assert list(convert_wan_vae_to_diffusers({native: torch.zeros(1)})) == [key]
    shapes = {official.vae_diffusers_to_native_key(k, nrb): v.shape for k, v in vae.state_dict().items()}
    cfg = official.vae_config(shapes)
    assert {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in cfg.items()} == {
        k: (list(vae.config[k]) if isinstance(vae.config[k], list | tuple) else vae.config[k]) for k in cfg
    }


def test_umt5_xxl_and_vit_h_maps_cover_every_tensor() -> None:
    with torch.device("meta"):
        t5 = UMT5EncoderModel(
            UMT5Config(
                vocab_size=256384,
                d_model=4096,
                d_kv=64,
                d_ff=10240,
                num_layers=24,
                num_heads=64,
                relative_attention_num_buckets=32,
            )
        )
        clip = CLIPVisionModel(
            CLIPVisionConfig(
                hidden_size=1280,
                intermediate_size=5120,
                num_hidden_layers=32,
                num_attention_heads=16,
                patch_size=14,
                image_size=224,
                hidden_act="gelu",
            )
        )
    t5_sd = t5.state_dict()
    native = {n: v for k, v in t5_sd.items() if (n := official.t5_hf_to_native_key(k)) is not None}
    # official umt5_xxl encoder: 24 blocks x 10 tensors (per-block relative position bias) + embedding + norm
    assert len(native) == 24 * 10 + 2
    assert "blocks.23.pos_embedding.embedding.weight" in native and "blocks.0.ffn.gate.0.weight" in native
    assert {official.t5_native_to_hf_key(k) for k in native} == set(t5_sd) - {"encoder.embed_tokens.weight"}
    cfg = official.t5_config({k: v.shape for k, v in native.items()})
    assert (cfg["d_model"], cfg["num_heads"], cfg["d_kv"], cfg["num_layers"]) == (4096, 64, 64, 24)

    clip_sd = {k.removeprefix("vision_model."): v for k, v in clip.state_dict().items()}
    native = dict(official.clip_hf_to_native(clip_sd.items()))
    assert all(k.startswith("visual.") for k in native)
    assert native["visual.transformer.31.attn.to_qkv.weight"].shape == (3 * 1280, 1280)
    back = dict(official.clip_native_to_hf(native.items()))
    assert back.keys() == clip_sd.keys()
    cfg = official.clip_config({k: v.shape for k, v in native.items()})
    assert (cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["image_size"]) == (16, 32, 224)
