"""MultiAnimate weights: the Wan2.1-I2V base in every layout, both released checkpoint layouts, lazy reads."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from multianimate_fixtures import RELEASE_3, RELEASE_7, merged_reference, random_lora, widen_labels, write_release
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

from wanimate.errors import WanimateError
from wanimate.models import factory
from wanimate.models.convert import convert_weights
from wanimate.models.families import I2V
from wanimate.models.loading import load_model
from wanimate.models.official_export import save_official
from wanimate.multianimate.adapters import MultiAnimateAdapters
from wanimate.multianimate.checkpoint import checkpoint_files, scan_checkpoint, tensor_reader
from wanimate.multianimate.loading import load_multianimate, resolve_adapter


def _clip80():
    torch.manual_seed(1)
    return CLIPVisionModel(
        CLIPVisionConfig(hidden_size=80, intermediate_size=160, num_hidden_layers=2, num_attention_heads=1,
                         patch_size=14, image_size=28, hidden_act="gelu", projection_dim=80)
    ).eval()  # fmt: skip


def _base_pipeline():
    """The tiny I2V pipeline with a CLIP tower of ViT-H head width, which the official format implies."""
    from diffusers import WanTransformer3DModel

    pipe = factory.build_i2v_pipeline("tiny")
    cfg = factory.model_config("tiny")
    torch.manual_seed(3)
    pipe.transformer = WanTransformer3DModel(**{**factory.i2v_transformer_config(cfg), "image_dim": 80}).eval()
    pipe.image_encoder = _clip80()
    pipe.image_processor = CLIPImageProcessor(crop_size=28, size={"shortest_edge": 28})
    return pipe


@pytest.fixture(scope="module")
def base():
    return _base_pipeline()


@pytest.fixture(scope="module")
def folders(base, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("i2v")
    official = save_official(base, root / "official")
    base.save_pretrained(root / "diffusers")
    animate = factory.build_pipeline("tiny")
    animate.transformer = factory.build_transformer(
        dataclasses.replace(factory.model_config("tiny"), transformer={**factory.model_config("tiny").transformer,
                                                                        "image_dim": 80}), seed=3)  # fmt: skip
    animate.image_encoder = _clip80()
    return {
        "official": official,
        "diffusers": root / "diffusers",
        "converted": convert_weights(official, root / "converted", progress=False),
        "animate-official": save_official(animate, root / "animate-official"),
    }


@pytest.mark.parametrize("which", ["official", "diffusers", "converted"])
def test_i2v_base_loads_the_same_weights_from_every_layout(base, folders, which):
    loaded = load_model(str(folders[which]), family=I2V, dtype=torch.float32, progress=False)
    assert type(loaded.pipeline).__name__ == "WanImageToVideoPipeline"
    for name in ("transformer", "vae", "text_encoder", "image_encoder"):
        want, got = getattr(base, name).state_dict(), getattr(loaded.pipeline, name).state_dict()
        assert want.keys() == got.keys(), name
        assert all(torch.equal(want[k].float(), got[k].float()) for k in want), name
    if which == "converted":
        index = json.loads((folders["converted"] / "model_index.json").read_text())
        assert index["_class_name"] == "WanImageToVideoPipeline"
        assert index["transformer"] == ["diffusers", "WanTransformer3DModel"]


def test_a_base_that_is_not_wan21_i2v_is_refused(folders, tmp_path):
    with pytest.raises(WanimateError, match=r"is not Wan2\.1-I2V-14B \(WanAnimateModel"):
        load_model(str(folders["animate-official"]), family=I2V, progress=False)
    animate_diffusers = tmp_path / "animate-diffusers"
    factory.build_pipeline("tiny").save_pretrained(animate_diffusers)
    with pytest.raises(WanimateError, match=r"holds a WanAnimatePipeline, not Wan2\.1-I2V-14B"):
        load_model(str(animate_diffusers), family=I2V, progress=False)
    with pytest.raises(WanimateError, match=r"is not Wan2\.2-Animate-14B \(WanModel, model_type i2v\)"):
        load_model(str(folders["official"]), progress=False)  # and the other way round


@pytest.fixture(scope="module")
def releases(base, tmp_path_factory):
    """The same adapters and LoRA in both released layouts (the 7-character one widened 4 -> 8 label channels)."""
    root = tmp_path_factory.mktemp("releases")
    torch.manual_seed(9)
    adapters = {k: v + 0.05 for k, v in MultiAnimateAdapters(24, 3).state_dict().items()}
    lora = random_lora(base.transformer, rank=4)
    three = write_release(root, RELEASE_3, adapters, lora, base.transformer,
                          prefix="_forward_module.", shards=3, index=True)  # fmt: skip
    seven = write_release(root, RELEASE_7, widen_labels(adapters), lora, base.transformer,
                          prefix="", shards=2, index=False)  # fmt: skip
    return {"adapters": adapters, "lora": lora, "3": three, "7": seven}


def test_checkpoints_are_indexed_from_headers_and_read_lazily(releases):
    for which, width in (("3", 4), ("7", 8)):
        ckpt = scan_checkpoint(checkpoint_files(releases[which]), which, which)
        assert ckpt.max_characters == width - 1 and ckpt.dim == 24 and ckpt.lora_rank == 4
        assert len(ckpt.lora) == 2 * 10  # self/cross q, k, v, o and the FFN of each of the 2 blocks
        assert {m.split(".", 2)[2] for m in ckpt.lora} == {
            "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v",
            "attn2.to_out.0", "ffn.net.0.proj", "ffn.net.2",
        }  # fmt: skip
        with tensor_reader() as reader:
            for ref in ckpt.adapters.values():
                reader.get(ref)
            for a, b in ckpt.lora.values():
                reader.get(a), reader.get(b)
        assert reader.read and not [k for k in reader.read if "base_layer" in k or "pipe_VAE" in k]


def test_both_released_layouts_load_and_give_identical_outputs(
    base, folders, releases, tiny_character_materials, one_thread
):
    from wanimate.generate.engine import SegmentGenerator
    from wanimate.multianimate.settings import MultiAnimateSettings

    settings = MultiAnimateSettings(steps=2, segment_frames=9, dtype="fp32", device="cpu", prompt="w1", seed=2)
    outputs = {}
    for which in ("3", "7"):
        model = load_multianimate(
            str(folders["diffusers"]), str(releases[which]), characters=3, dtype=torch.float32, progress=False
        )
        assert model.max_characters == int(which) and model.lora_layers == 20
        merged = merged_reference(base.transformer, releases["lora"])
        assert all(torch.equal(merged[k], v) for k, v in model.pipeline.transformer.state_dict().items())
        assert torch.equal(model.adapters.state_dict()["dwpose_embedding.12.bias"],
                           releases["adapters"]["dwpose_embedding.12.bias"])  # fmt: skip
        run = SegmentGenerator(model, tiny_character_materials, settings, torch.device("cpu")).run()
        outputs[which] = torch.cat([out.frames for out in run])
    # The widened identifier gives the same features for up to 3 characters: labels 4..7 are all zero.
    assert (outputs["3"] - outputs["7"]).abs().max() <= 1e-6


def test_too_many_characters_names_what_each_checkpoint_supports(folders, releases):
    with pytest.raises(WanimateError) as err:
        load_multianimate(str(folders["diffusers"]), str(releases["3"]), characters=4, progress=False)
    message = str(err.value)
    assert "4 characters" in message and "supports up to 3" in message and "multianimate-7 (up to 7)" in message
    with pytest.raises(WanimateError, match="no released MultiAnimate checkpoint supports that many"):
        resolve_adapter("auto", characters=8, random_base=False)


def test_hub_release_from_the_cache_and_its_absence(releases, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(WanimateError) as err:
        resolve_adapter("multianimate-3", characters=2, random_base=False, progress=False)
    assert "hf download N00B0DY/MultiAnimate --include 'epoch=39-step=7000.ckpt/*'" in str(err.value)
    assert "--adapter" in str(err.value) and "\n" not in str(err.value)
    revision = "89abcdef" * 5
    repo = tmp_path / "hf" / "hub" / "models--N00B0DY--MultiAnimate"
    shutil.copytree(releases["3"], repo / "snapshots" / revision / RELEASE_3)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    spec = resolve_adapter("auto", characters=2, random_base=False, progress=False)
    assert spec.max_characters == 3 and spec.source == f"N00B0DY/MultiAnimate@{revision}/{RELEASE_3}"


def test_not_a_multianimate_checkpoint(tmp_path):
    from safetensors.torch import save_file

    save_file({"pipe.dit.blocks.0.self_attn.q.base_layer.weight": torch.zeros(2, 2)}, tmp_path / "model.safetensors")
    with pytest.raises(WanimateError, match="is not a MultiAnimate checkpoint: it has no dwpose_embedding"):
        resolve_adapter(str(tmp_path), characters=1, random_base=False)


def test_default_base_from_the_hub_cache_is_converted_once(base, folders, tmp_path, monkeypatch):
    from wanimate.models import convert, hub

    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    revision = "0123abcd" * 5
    repo = tmp_path / "hf" / "hub" / "models--Wan-AI--Wan2.1-I2V-14B-720P"
    shutil.copytree(folders["official"], repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    first = load_model(family=I2V, dtype=torch.float32, progress=False)
    assert first.layout == "official" and first.source == f"Wan-AI/Wan2.1-I2V-14B-720P@{revision}"
    assert (
        hub.converted_dir("Wan-AI/Wan2.1-I2V-14B-720P", repo / "snapshots" / revision) / "model_index.json"
    ).is_file()
    monkeypatch.setattr(convert, "convert_weights", lambda *a, **k: pytest.fail("converted again"))
    again = load_model(family=I2V, dtype=torch.float32, progress=False)
    assert all(
        torch.equal(v, again.pipeline.transformer.state_dict()[k]) for k, v in base.transformer.state_dict().items()
    )
