"""GGUF transformer files load through diffusers' GGUF support and stay packed.

The file is written here with the ``gguf`` package from the random ``mid`` DiT (``tiny`` cannot be used:
diffusers' Animate single-file converter assumes the real 512 px motion encoder, which ``mid`` has),
with native Wan key names as community GGUF files use, block linears in Q8_0 and the rest in F32.
Bound: a Q8_0 block's output is within 2% (relative max) of the fp32 block.
"""

from __future__ import annotations

import gguf
import pytest
import torch
from diffusers.quantizers.gguf.utils import GGUFLinear
from gguf.quants import quantize

from wanimate.errors import WanimateError
from wanimate.models.factory import build_transformer, model_config
from wanimate.models.memory import load_gguf_transformer, weight_bytes
from wanimate.models.official import dit_diffusers_to_native


@pytest.fixture(scope="module")
def original_and_loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gguf")
    original = build_transformer(model_config("mid"))
    original.save_config(folder)
    writer = gguf.GGUFWriter(str(folder / "dit.gguf"), "wan")
    for key, value in dit_diffusers_to_native(original.state_dict().items()):
        array = value.float().numpy()
        if key.startswith("blocks.") and array.ndim == 2 and array.shape[1] % 32 == 0:
            packed = quantize(array, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(key, packed, raw_shape=packed.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(key, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    loaded = load_gguf_transformer(folder / "dit.gguf", folder, torch.float32)
    return original, loaded


def test_gguf_blocks_stay_packed_and_the_rest_is_exact(original_and_loaded):
    original, loaded = original_and_loaded
    assert isinstance(loaded.blocks[0].attn1.to_q, GGUFLinear)
    assert weight_bytes(loaded.blocks) * 3.5 < weight_bytes(original.blocks)
    ours = dict(loaded.named_parameters())
    for name, param in original.named_parameters():
        if not name.startswith("blocks.") or param.ndim != 2:
            assert torch.equal(ours[name].float(), param.float()), name


@torch.no_grad()
def test_gguf_block_output_is_close(original_and_loaded):
    original, loaded = original_and_loaded
    g = torch.Generator().manual_seed(0)
    dim = original.config.num_attention_heads * original.config.attention_head_dim
    hidden = torch.randn(1, 64, dim, generator=g)
    context = torch.randn(1, 300, dim, generator=g)
    temb = torch.randn(1, 6, dim, generator=g) * 0.1
    rotary = original.rope(torch.zeros(1, 36, 1, 16, 16))
    expected = original.blocks[0](hidden, context, temb, rotary)
    got = loaded.blocks[0](hidden, context, temb, rotary)
    assert 0 < (got - expected).abs().max() <= 0.02 * expected.abs().max()


def test_gguf_rejects_other_files(tmp_path):
    with pytest.raises(WanimateError, match=r"not a \.gguf"):
        load_gguf_transformer(tmp_path / "dit.safetensors", tmp_path, torch.float32)
