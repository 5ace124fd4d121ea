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
def gguf_file(tmp_path_factory):
    """The mid DiT and a GGUF file of it (block linears Q8_0, the rest F32, native key names)."""
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
    return original, folder / "dit.gguf"


@pytest.fixture(scope="module")
def original_and_loaded(gguf_file):
    original, path = gguf_file
    return original, load_gguf_transformer(path, path.parent, torch.float32)


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


@pytest.fixture(scope="module")
def base_folder(gguf_file, tmp_path_factory):
    """A diffusers base for the mid DiT: mid's encoders and transformer config, tiny's VAE (same latents)."""
    from wanimate.models.factory import build_pipeline

    original, _ = gguf_file
    pipe = build_pipeline("mid", with_transformer=False)
    pipe.register_modules(vae=build_pipeline("tiny", with_transformer=False).vae)
    folder = tmp_path_factory.mktemp("base") / "base"
    pipe.save_pretrained(folder)
    original.save_config(folder / "transformer")
    return folder


def test_a_gguf_file_works_as_weights(gguf_file, base_folder, tmp_path, capsys):
    """`--weights dit.gguf --base FOLDER` loads the packed DiT on top of the base and generates."""
    from wanimate.cli import main
    from wanimate.models.loading import load_model
    from wanimate.testing.synthetic import write_materials
    from wanimate.video import probe_video

    original, path = gguf_file
    model = load_model(path, dtype=torch.float32, device="cpu", base=str(base_folder), progress=False)
    assert model.layout == "single-file" and isinstance(model.pipeline.transformer.blocks[0].attn1.to_q, GGUFLinear)
    assert torch.equal(model.pipeline.transformer.patch_embedding.weight, original.patch_embedding.weight)

    materials = write_materials(tmp_path / "m", num_frames=5)
    out = tmp_path / "o.mp4"
    args = ["generate", str(materials), "-o", str(out), "--weights", str(path), "--base", str(base_folder)]
    args += ["--steps", "1", "--segment-frames", "5", "--dtype", "fp32", "--device", "cpu", "--prompt", "w1"]
    try:
        main(args)
    except SystemExit as exc:
        pytest.fail(f"exit {exc.code}: {capsys.readouterr().err}")
    assert probe_video(out).num_frames == 5
