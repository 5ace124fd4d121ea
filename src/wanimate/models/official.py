"""Key conversion between the official Wan checkpoints and the diffusers/transformers classes.

Wan2.2-Animate-14B and Wan2.1-I2V-14B (MultiAnimate's base) share the native DiT names of the blocks,
embedders and head; Animate adds the motion encoder and face adapters. The official release ships four
native state dicts (the DiT, ``Wan2.1_VAE.pth``, the umT5 encoder
``.pth`` and the open-clip XLM-RoBERTa ViT-H/14 ``.pth``). Each component gets a forward map
(native -> diffusers/transformers) used when loading, and its exact inverse (used to write official-layout
test fixtures and checked against the forward map on the real 14B key list). The maps work key by key on
whatever tensors they are given, so they never hold a second copy of a 35 GB state dict, and they take the
layer counts from the keys themselves rather than assuming the 14B sizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch

from wanimate.errors import WanimateError

Tensor = torch.Tensor
COMFY_PREFIX = "model.diffusion_model."

# ---------------------------------------------------------------------------------------------- DiT

# Renames of whole dotted path segments, applied to the part after ``blocks.N.`` or at top level.
_DIT_BLOCK_RENAMES = [
    ("self_attn.q.", "attn1.to_q."),
    ("self_attn.k.", "attn1.to_k."),
    ("self_attn.v.", "attn1.to_v."),
    ("self_attn.o.", "attn1.to_out.0."),
    ("self_attn.norm_q.", "attn1.norm_q."),
    ("self_attn.norm_k.", "attn1.norm_k."),
    ("cross_attn.q.", "attn2.to_q."),
    ("cross_attn.k.", "attn2.to_k."),
    ("cross_attn.v.", "attn2.to_v."),
    ("cross_attn.o.", "attn2.to_out.0."),
    ("cross_attn.norm_q.", "attn2.norm_q."),
    ("cross_attn.norm_k.", "attn2.norm_k."),
    ("cross_attn.k_img.", "attn2.add_k_proj."),
    ("cross_attn.v_img.", "attn2.add_v_proj."),
    ("cross_attn.norm_k_img.", "attn2.norm_added_k."),
    # The official block applies norm1, norm3 (affine, before cross-attention), norm2; diffusers numbers
    # them in order of use, so the only affine one is norm2 there.
    ("norm3.", "norm2."),
    ("ffn.0.", "ffn.net.0.proj."),
    ("ffn.2.", "ffn.net.2."),
    ("modulation", "scale_shift_table"),
]

_DIT_TOP_RENAMES = [
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("img_emb.proj.0.", "condition_embedder.image_embedder.norm1."),
    ("img_emb.proj.1.", "condition_embedder.image_embedder.ff.net.0.proj."),
    ("img_emb.proj.3.", "condition_embedder.image_embedder.ff.net.2."),
    ("img_emb.proj.4.", "condition_embedder.image_embedder.norm2."),
    ("head.head.", "proj_out."),
    ("head.modulation", "scale_shift_table"),
    ("face_encoder.conv1_local.conv.", "face_encoder.conv1_local."),
    ("face_encoder.conv2.conv.", "face_encoder.conv2."),
    ("face_encoder.conv3.conv.", "face_encoder.conv3."),
    ("motion_encoder.dec.direction.weight", "motion_encoder.motion_synthesis_weight"),
    ("motion_encoder.enc.fc.", "motion_encoder.motion_network."),
]

_FACE_ADAPTER_RENAMES = [
    ("linear1_q.", "to_q."),
    ("linear2.", "to_out."),
    ("q_norm.", "norm_q."),
    ("k_norm.", "norm_k."),
]

_ME = "motion_encoder.enc.net_app.convs."
_BLUR_KERNEL_1D = (1.0, 3.0, 3.0, 1.0)


def _swap_prefix(key: str, table: list[tuple[str, str]], forward: bool) -> str | None:
    for native, diff in table:
        src, dst = (native, diff) if forward else (diff, native)
        if key.startswith(src):
            return dst + key[len(src) :]
    return None


def _motion_conv_count(keys: Iterable[str]) -> int:
    """Index of the final conv in ``enc.net_app.convs`` (8 for the 512 px encoder)."""
    idx = [int(m.group(1)) for k in keys if (m := re.match(re.escape(_ME) + r"(\d+)\.", k))]
    return max(idx) if idx else 0


def dit_native_to_diffusers(
    items: Iterable[tuple[str, Tensor]], all_keys: Iterable[str]
) -> Iterator[tuple[str, Tensor]]:
    """Stream native (or ComfyUI ``model.diffusion_model.``-prefixed) DiT tensors as diffusers tensors.

    ``all_keys`` lists every key of the checkpoint (all shards), because the motion encoder's last conv
    index depends on its depth and may sit in another shard than the tensors being converted. The official
    checkpoint persists the blur ``kernel`` buffers; diffusers rebuilds them, so they are dropped here.
    """
    last_conv = _motion_conv_count(k.removeprefix(COMFY_PREFIX) for k in all_keys)
    for key, value in items:
        yield from _dit_key_forward(key.removeprefix(COMFY_PREFIX), value, last_conv)


def _dit_key_forward(key: str, value: Tensor, last_conv: int) -> Iterator[tuple[str, Tensor]]:
    if key.startswith(_ME):
        if key.endswith(".kernel"):
            return
        yield _motion_conv_forward(key, value, last_conv)
        return
    if m := re.match(r"blocks\.(\d+)\.(.*)$", key):
        rest = _swap_prefix(m.group(2), _DIT_BLOCK_RENAMES, True) or m.group(2)
        yield f"blocks.{m.group(1)}.{rest}", value
        return
    if m := re.match(r"face_adapter\.fuser_blocks\.(\d+)\.(.*)$", key):
        head, rest = f"face_adapter.{m.group(1)}.", m.group(2)
        if rest.startswith("linear1_kv."):
            # clone: the halves must not share storage (safetensors refuses to save shared tensors)
            k_part, v_part = (t.clone() for t in value.chunk(2, dim=0))
            suffix = rest.removeprefix("linear1_kv.")
            yield head + "to_k." + suffix, k_part
            yield head + "to_v." + suffix, v_part
            return
        yield head + (_swap_prefix(rest, _FACE_ADAPTER_RENAMES, True) or rest), value
        return
    yield _swap_prefix(key, _DIT_TOP_RENAMES, True) or key, value


def _motion_conv_forward(key: str, value: Tensor, last_conv: int) -> tuple[str, Tensor]:
    m = re.match(re.escape(_ME) + r"(\d+)\.(.*)$", key)
    assert m is not None
    idx, rest = int(m.group(1)), m.group(2)
    out = "motion_encoder."
    if idx == 0:
        name = {"0.weight": "conv_in.weight", "1.bias": "conv_in.act_fn.bias"}.get(rest)
    elif idx == last_conv:
        name = {"weight": "conv_out.weight"}.get(rest)
    else:
        table = {
            "conv1.0.weight": "conv1.weight",
            "conv1.1.bias": "conv1.act_fn.bias",
            "conv2.1.weight": "conv2.weight",
            "conv2.2.bias": "conv2.act_fn.bias",
            "skip.1.weight": "conv_skip.weight",
        }
        name = f"res_blocks.{idx - 1}.{table[rest]}" if rest in table else None
    if name is None:
        raise WanimateError(f"unexpected motion-encoder key {key!r} in the DiT checkpoint")
    # FusedLeakyReLU stores its bias as (1, C, 1, 1) in the official code and as (C,) in diffusers.
    return out + name, value.reshape(-1) if name.endswith("act_fn.bias") else value


def dit_diffusers_to_native(items: Iterable[tuple[str, Tensor]]) -> Iterator[tuple[str, Tensor]]:
    """Inverse of :func:`dit_native_to_diffusers`, including the blur kernels the official code persists."""
    pending = dict(items)
    n_res = len({k.split(".")[2] for k in pending if k.startswith("motion_encoder.res_blocks.")})
    kernel = torch.tensor(_BLUR_KERNEL_1D)
    kernel = kernel[None, :] * kernel[:, None]
    kernel = kernel / kernel.sum()
    for key, value in pending.items():
        if key.startswith("face_adapter.") and ".to_v." in key:
            continue
        if m := re.match(r"face_adapter\.(\d+)\.(.*)$", key):
            head, rest = f"face_adapter.fuser_blocks.{m.group(1)}.", m.group(2)
            if rest.startswith("to_k."):
                suffix = rest.removeprefix("to_k.")
                v = pending[f"face_adapter.{m.group(1)}.to_v.{suffix}"]
                yield head + "linear1_kv." + suffix, torch.cat([value, v], dim=0)
                continue
            yield head + (_swap_prefix(rest, _FACE_ADAPTER_RENAMES, False) or rest), value
            continue
        if key.startswith("motion_encoder.") and not key.startswith(
            ("motion_encoder.motion_network.", "motion_encoder.motion_synthesis")
        ):
            yield from _motion_conv_inverse(key, value, n_res, kernel)
            continue
        if m := re.match(r"blocks\.(\d+)\.(.*)$", key):
            rest = _swap_prefix(m.group(2), _DIT_BLOCK_RENAMES, False) or m.group(2)
            yield f"blocks.{m.group(1)}.{rest}", value
            continue
        yield _swap_prefix(key, _DIT_TOP_RENAMES, False) or key, value


def _motion_conv_inverse(key: str, value: Tensor, n_res: int, kernel: Tensor) -> Iterator[tuple[str, Tensor]]:
    rest = key.removeprefix("motion_encoder.")
    bias = value.reshape(1, -1, 1, 1)
    if rest == "conv_in.weight":
        yield _ME + "0.0.weight", value
    elif rest == "conv_in.act_fn.bias":
        yield _ME + "0.1.bias", bias
    elif rest == "conv_out.weight":
        yield _ME + f"{n_res + 1}.weight", value
    elif m := re.match(r"res_blocks\.(\d+)\.(.*)$", rest):
        base = _ME + f"{int(m.group(1)) + 1}."
        table = {
            "conv1.weight": [("conv1.0.weight", value)],
            "conv1.act_fn.bias": [("conv1.1.bias", bias)],
            "conv2.weight": [("conv2.1.weight", value), ("conv2.0.kernel", kernel.to(value.dtype))],
            "conv2.act_fn.bias": [("conv2.2.bias", bias)],
            "conv_skip.weight": [("skip.1.weight", value), ("skip.0.kernel", kernel.to(value.dtype))],
        }
        for name, tensor in table[m.group(2)]:
            yield base + name, tensor
    else:
        raise WanimateError(f"unexpected motion-encoder key {key!r}")


def dit_native_module_to_diffusers(module: str) -> str:
    """A native block Linear name (``blocks.3.cross_attn.k_img``) as diffusers names it; others unchanged."""
    module = module.removeprefix(COMFY_PREFIX).removeprefix("diffusion_model.")
    if m := re.match(r"blocks\.(\d+)\.(.*)$", module):
        renamed = _swap_prefix(m.group(2) + ".", _DIT_BLOCK_RENAMES, True)
        if renamed is not None:
            return f"blocks.{m.group(1)}.{renamed[:-1]}"
    return module


def dit_diffusers_module_to_native(module: str) -> str:
    """Inverse of :func:`dit_native_module_to_diffusers` (used to write LoRA fixtures)."""
    if m := re.match(r"blocks\.(\d+)\.(.*)$", module):
        renamed = _swap_prefix(m.group(2) + ".", _DIT_BLOCK_RENAMES, False)
        if renamed is not None:
            return f"blocks.{m.group(1)}.{renamed[:-1]}"
    return module


def is_native_dit(keys: Iterable[str]) -> bool:
    """True for official/ComfyUI key names (``blocks.0.self_attn.q.weight``), False for diffusers names."""
    return any(".self_attn." in k or k.removeprefix(COMFY_PREFIX).startswith("head.head") for k in keys)


def _wan_core_config(official: Mapping[str, Any], s: Mapping[str, torch.Size]) -> dict[str, Any]:
    """The transformer config fields every Wan DiT with the CLIP image branch shares, from native shapes."""
    dim = s["patch_embedding.weight"][0]
    num_heads = int(official.get("num_heads", 40))
    patch = official.get("patch_size", (1, 2, 2))
    return {
        "patch_size": list(patch),
        "num_attention_heads": num_heads,
        "attention_head_dim": int(dim) // num_heads,
        "in_channels": int(s["patch_embedding.weight"][1]),
        "out_channels": int(s["head.head.weight"][0]) // (patch[0] * patch[1] * patch[2]),
        "text_dim": int(s["text_embedding.0.weight"][1]),
        "freq_dim": int(s["time_embedding.0.weight"][1]),
        "ffn_dim": int(s["blocks.0.ffn.0.weight"][0]),
        "num_layers": len({k.split(".")[1] for k in s if k.startswith("blocks.")}),
        "cross_attn_norm": bool(official.get("cross_attn_norm", True)),
        "qk_norm": "rms_norm_across_heads" if official.get("qk_norm", True) else None,
        "eps": float(official.get("eps", 1e-6)),
        "image_dim": int(s["img_emb.proj.0.weight"][0]),
        "added_kv_proj_dim": int(s["blocks.0.cross_attn.k_img.weight"][1]),
        "rope_max_seq_len": 1024,
        "pos_embed_seq_len": None,
    }


def i2v_diffusers_config(official: Mapping[str, Any], shapes: Mapping[str, torch.Size]) -> dict[str, Any]:
    """A ``WanTransformer3DModel`` config for an official Wan2.1-I2V DiT (config.json plus native shapes)."""
    return _wan_core_config(official, {k.removeprefix(COMFY_PREFIX): v for k, v in shapes.items()})


def dit_diffusers_config(official: Mapping[str, Any], shapes: Mapping[str, torch.Size]) -> dict[str, Any]:
    """A ``WanAnimateTransformer3DModel`` config from the official ``config.json`` plus native tensor shapes.

    The official ``WanAnimateModel`` hard-codes the image, motion and face sizes; reading them from the
    shapes instead keeps small test checkpoints (and any future variant) loadable by the same path.
    """
    s = {k.removeprefix(COMFY_PREFIX): v for k, v in shapes.items()}
    core = _wan_core_config(official, s)
    num_layers = core["num_layers"]
    n_res = _motion_conv_count(s) - 1
    size = 2 ** (n_res + 2)
    channels = {str(size): int(s[_ME + "0.0.weight"][0])}
    for i in range(n_res):
        channels[str(size // 2 ** (i + 1))] = int(s[_ME + f"{i + 1}.conv2.1.weight"][0])
    from diffusers.models.transformers.transformer_wan_animate import WAN_ANIMATE_MOTION_ENCODER_CHANNEL_SIZES

    default = {k: WAN_ANIMATE_MOTION_ENCODER_CHANNEL_SIZES[k] for k in channels}
    face_hidden = int(s["face_encoder.conv2.conv.weight"][0])
    n_fuser = len({k.split(".")[2] for k in s if k.startswith("face_adapter.fuser_blocks.")})
    return {
        **core,
        "latent_channels": int(s["pose_patch_embedding.weight"][1]),
        "motion_encoder_channel_sizes": None if channels == default else channels,
        "motion_encoder_size": size,
        "motion_style_dim": int(s[_ME + f"{n_res + 1}.weight"][0]),
        "motion_dim": int(s["motion_encoder.dec.direction.weight"][1]),
        "motion_encoder_dim": int(s["motion_encoder.dec.direction.weight"][0]),
        "face_encoder_hidden_dim": face_hidden,
        "face_encoder_num_heads": int(s["face_encoder.conv1_local.conv.weight"][0]) // face_hidden,
        "inject_face_latents_blocks": num_layers // max(n_fuser, 1),
        "motion_encoder_batch_size": 8,
    }


def dit_official_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The official ``config.json`` fields for a diffusers transformer config (used to write fixtures).

    An Animate config (it has ``motion_encoder_dim``) gives a ``WanAnimateModel`` config; any other a
    Wan2.1 ``WanModel`` I2V config, as ``Wan-AI/Wan2.1-I2V-14B-720P`` ships it.
    """
    heads = int(config["num_attention_heads"])
    animate = "motion_encoder_dim" in config
    common = {
        "patch_size": list(config["patch_size"]),
        "text_len": 512,
        "in_dim": int(config["in_channels"]),
        "dim": heads * int(config["attention_head_dim"]),
        "ffn_dim": int(config["ffn_dim"]),
        "freq_dim": int(config["freq_dim"]),
        "text_dim": int(config["text_dim"]),
        "out_dim": int(config["out_channels"]),
        "num_heads": heads,
        "num_layers": int(config["num_layers"]),
        "window_size": [-1, -1],
        "qk_norm": config["qk_norm"] is not None,
        "cross_attn_norm": bool(config["cross_attn_norm"]),
        "eps": float(config["eps"]),
    }
    if not animate:
        return {"_class_name": "WanModel", "model_type": "i2v", **common}
    return {
        "_class_name": "WanAnimateModel",
        **common,
        "motion_encoder_dim": int(config["motion_encoder_dim"]),
        "use_img_emb": True,
    }


# ---------------------------------------------------------------------------------------------- VAE

_VAE_RES = [
    ("residual.0.gamma", "norm1.gamma"),
    ("residual.2.", "conv1."),
    ("residual.3.gamma", "norm2.gamma"),
    ("residual.6.", "conv2."),
    ("shortcut.", "conv_shortcut."),
]
_VAE_FIXED = [
    ("encoder.conv1.", "encoder.conv_in."),
    ("decoder.conv1.", "decoder.conv_in."),
    ("encoder.head.0.", "encoder.norm_out."),
    ("encoder.head.2.", "encoder.conv_out."),
    ("decoder.head.0.", "decoder.norm_out."),
    ("decoder.head.2.", "decoder.conv_out."),
    ("conv1.", "quant_conv."),
    ("conv2.", "post_quant_conv."),
]


def _vae_res(rest: str, forward: bool) -> str:
    return _swap_prefix(rest, _VAE_RES, forward) or rest


def vae_native_to_diffusers_key(key: str, num_res_blocks: int) -> str:
    """``Wan2.1_VAE.pth`` key -> ``AutoencoderKLWan`` key (decoder stages hold ``num_res_blocks + 1`` blocks)."""
    if m := re.match(r"(encoder|decoder)\.middle\.(\d)\.(.*)$", key):
        part, idx, rest = m.groups()
        if idx == "1":
            return f"{part}.mid_block.attentions.0.{rest}"
        return f"{part}.mid_block.resnets.{int(idx) // 2}.{_vae_res(rest, True)}"
    if m := re.match(r"encoder\.downsamples\.(\d+)\.(.*)$", key):
        return f"encoder.down_blocks.{m.group(1)}.{_vae_res(m.group(2), True)}"
    if m := re.match(r"decoder\.upsamples\.(\d+)\.(.*)$", key):
        stage, pos = divmod(int(m.group(1)), num_res_blocks + 2)
        if pos == num_res_blocks + 1:
            return f"decoder.up_blocks.{stage}.upsamplers.0.{m.group(2)}"
        return f"decoder.up_blocks.{stage}.resnets.{pos}.{_vae_res(m.group(2), True)}"
    return _swap_prefix(key, _VAE_FIXED, True) or key


def vae_diffusers_to_native_key(key: str, num_res_blocks: int) -> str:
    """Inverse of :func:`vae_native_to_diffusers_key`."""
    if m := re.match(r"(encoder|decoder)\.mid_block\.(attentions|resnets)\.(\d)\.(.*)$", key):
        part, kind, idx, rest = m.groups()
        if kind == "attentions":
            return f"{part}.middle.1.{rest}"
        return f"{part}.middle.{int(idx) * 2}.{_vae_res(rest, False)}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.(.*)$", key):
        return f"encoder.downsamples.{m.group(1)}.{_vae_res(m.group(2), False)}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)$", key):
        return f"decoder.upsamples.{int(m.group(1)) * (num_res_blocks + 2) + num_res_blocks + 1}.{m.group(2)}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)$", key):
        idx = int(m.group(1)) * (num_res_blocks + 2) + int(m.group(2))
        return f"decoder.upsamples.{idx}.{_vae_res(m.group(3), False)}"
    return _swap_prefix(key, _VAE_FIXED, False) or key


def vae_config(shapes: Mapping[str, torch.Size]) -> dict[str, Any]:
    """``AutoencoderKLWan`` kwargs read from native VAE shapes (the real file gives the diffusers defaults)."""
    down = {int(k.split(".")[2]) for k in shapes if k.startswith("encoder.downsamples.")}
    resample = sorted(i for i in down if f"encoder.downsamples.{i}.resample.1.weight" in shapes)
    num_res_blocks = resample[0] if resample else len(down)
    stage_len = num_res_blocks + 1
    base_dim = int(shapes["encoder.conv1.weight"][0])
    n_stages = len(resample) + 1
    dim_mult = [
        int(shapes[f"encoder.downsamples.{s * stage_len}.residual.6.weight"][0]) // base_dim for s in range(n_stages)
    ]
    temporal = [f"encoder.downsamples.{i}.time_conv.weight" in shapes for i in resample]
    return {
        "base_dim": base_dim,
        "z_dim": int(shapes["conv2.weight"][0]),
        "dim_mult": dim_mult,
        "num_res_blocks": num_res_blocks,
        "attn_scales": [],
        "temperal_downsample": temporal,
        "dropout": 0.0,
    }


# ------------------------------------------------------------------------------------------ umT5

_T5_LAYER = [
    ("attn.q.", "layer.0.SelfAttention.q."),
    ("attn.k.", "layer.0.SelfAttention.k."),
    ("attn.v.", "layer.0.SelfAttention.v."),
    ("attn.o.", "layer.0.SelfAttention.o."),
    ("pos_embedding.embedding.", "layer.0.SelfAttention.relative_attention_bias."),
    ("norm1.", "layer.0.layer_norm."),
    # official FFN: fc2(fc1(x) * gelu(gate(x))); transformers' gated-gelu: wo(gelu(wi_0(x)) * wi_1(x))
    ("ffn.gate.0.", "layer.1.DenseReluDense.wi_0."),
    ("ffn.fc1.", "layer.1.DenseReluDense.wi_1."),
    ("ffn.fc2.", "layer.1.DenseReluDense.wo."),
    ("norm2.", "layer.1.layer_norm."),
]


def t5_native_to_hf_key(key: str) -> str | None:
    """Official ``wan/modules/t5.py`` encoder key -> ``UMT5EncoderModel`` key (``None``: not an encoder key)."""
    if key == "token_embedding.weight":
        return "shared.weight"
    if key.startswith("norm."):
        return "encoder.final_layer_norm." + key.removeprefix("norm.")
    if m := re.match(r"blocks\.(\d+)\.(.*)$", key):
        rest = _swap_prefix(m.group(2), _T5_LAYER, True)
        return f"encoder.block.{m.group(1)}.{rest}" if rest else None
    return None


def t5_hf_to_native_key(key: str) -> str | None:
    """Inverse of :func:`t5_native_to_hf_key`; the tied ``encoder.embed_tokens`` copy maps to nothing."""
    if key == "shared.weight":
        return "token_embedding.weight"
    if key.startswith("encoder.final_layer_norm."):
        return "norm." + key.removeprefix("encoder.final_layer_norm.")
    if m := re.match(r"encoder\.block\.(\d+)\.(.*)$", key):
        rest = _swap_prefix(m.group(2), _T5_LAYER, False)
        return f"blocks.{m.group(1)}.{rest}" if rest else None
    return None


def t5_config(shapes: Mapping[str, torch.Size]) -> dict[str, Any]:
    """``UMT5Config`` kwargs from native shapes: umT5-XXL for the real file, any size for fixtures."""
    vocab, d_model = shapes["token_embedding.weight"]
    buckets, heads = shapes["blocks.0.pos_embedding.embedding.weight"]
    return {
        "vocab_size": int(vocab),
        "d_model": int(d_model),
        "d_kv": int(shapes["blocks.0.attn.q.weight"][0]) // int(heads),
        "d_ff": int(shapes["blocks.0.ffn.fc1.weight"][0]),
        "num_layers": len({k.split(".")[1] for k in shapes if k.startswith("blocks.")}),
        "num_heads": int(heads),
        "relative_attention_num_buckets": int(buckets),
        "relative_attention_max_distance": 128,
        "feed_forward_proj": "gated-gelu",
        "layer_norm_epsilon": 1e-6,
        "tie_word_embeddings": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }


# ------------------------------------------------------------------------------------------ CLIP

CLIP_HEAD_DIM = 80  # ViT-H/14: 1280 wide, 16 heads; the checkpoint stores no head count
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

_CLIP_LAYER = [
    ("norm1.", "layer_norm1."),
    ("norm2.", "layer_norm2."),
    ("attn.proj.", "self_attn.out_proj."),
    ("mlp.0.", "mlp.fc1."),
    ("mlp.2.", "mlp.fc2."),
]
_CLIP_TOP = [
    ("visual.pre_norm.", "pre_layrnorm."),
    ("visual.post_norm.", "post_layernorm."),
    ("visual.patch_embedding.", "embeddings.patch_embedding."),
]


def clip_native_to_hf(items: Iterable[tuple[str, Tensor]]) -> Iterator[tuple[str, Tensor]]:
    """open-clip ``visual.*`` tensors -> ``CLIPVisionModel`` tensors; the text tower and head are skipped.

    Names carry no ``vision_model.`` prefix (transformers 5 dropped it; the loader adds it back for older
    versions). The fused ``to_qkv`` projection is laid out as [q; k; v] along the output dimension.
    """
    for key, value in items:
        if key == "visual.cls_embedding":
            yield "embeddings.class_embedding", value.reshape(-1)
        elif key == "visual.pos_embedding":
            yield "embeddings.position_embedding.weight", value.reshape(value.shape[-2:])
        elif m := re.match(r"visual\.transformer\.(\d+)\.(.*)$", key):
            base = f"encoder.layers.{m.group(1)}."
            rest = m.group(2)
            if rest.startswith("attn.to_qkv."):
                suffix = rest.removeprefix("attn.to_qkv.")
                for name, part in zip("qkv", value.chunk(3, dim=0), strict=True):
                    yield f"{base}self_attn.{name}_proj.{suffix}", part.clone()
            else:
                yield base + (_swap_prefix(rest, _CLIP_LAYER, True) or rest), value
        elif (new := _swap_prefix(key, _CLIP_TOP, True)) is not None:
            yield new, value


def clip_hf_to_native(items: Iterable[tuple[str, Tensor]]) -> Iterator[tuple[str, Tensor]]:
    """Inverse of :func:`clip_native_to_hf` (the ``visual.*`` tower only)."""
    pending = dict(items)
    for key, value in pending.items():
        if key == "embeddings.class_embedding":
            yield "visual.cls_embedding", value.reshape(1, 1, -1)
        elif key == "embeddings.position_embedding.weight":
            yield "visual.pos_embedding", value.unsqueeze(0)
        elif m := re.match(r"encoder\.layers\.(\d+)\.(.*)$", key):
            base, rest = f"visual.transformer.{m.group(1)}.", m.group(2)
            if m2 := re.match(r"self_attn\.([qkv])_proj\.(.*)$", rest):
                if m2.group(1) == "q":
                    parts = [pending[f"encoder.layers.{m.group(1)}.self_attn.{n}_proj.{m2.group(2)}"] for n in "qkv"]
                    yield f"{base}attn.to_qkv.{m2.group(2)}", torch.cat(parts, dim=0)
            else:
                yield base + (_swap_prefix(rest, _CLIP_LAYER, False) or rest), value
        elif (new := _swap_prefix(key, _CLIP_TOP, False)) is not None:
            yield new, value


def clip_config(shapes: Mapping[str, torch.Size]) -> dict[str, Any]:
    """``CLIPVisionConfig`` kwargs for the open-clip ViT tower (exact GELU, eps 1e-5, like open-clip)."""
    hidden, _, patch, _ = shapes["visual.patch_embedding.weight"]
    positions = int(shapes["visual.pos_embedding"][-2])
    grid = round((positions - 1) ** 0.5)
    if hidden % CLIP_HEAD_DIM:
        raise WanimateError(f"CLIP tower width {hidden} is not a multiple of the ViT-H head size {CLIP_HEAD_DIM}")
    return {
        "hidden_size": int(hidden),
        "intermediate_size": int(shapes["visual.transformer.0.mlp.0.weight"][0]),
        "num_hidden_layers": len({k.split(".")[2] for k in shapes if k.startswith("visual.transformer.")}),
        "num_attention_heads": int(hidden) // CLIP_HEAD_DIM,
        "patch_size": int(patch),
        "image_size": grid * int(patch),
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
        "projection_dim": int(hidden),
    }
