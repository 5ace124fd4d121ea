"""Every weights layout loads into the same model: official, diffusers, converted, single-file, hub cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from checkpoints import put_in_cache, reference_pipeline, write_layouts
from huggingface_hub import constants

from wanimate.errors import WanimateError
from wanimate.models import convert, hub
from wanimate.models.convert import convert_weights
from wanimate.models.loading import LoadedModel, load_model
from wanimate.models.official_io import LORA_FILE


@pytest.fixture(scope="module")
def reference():
    return reference_pipeline()


@pytest.fixture(scope="module")
def layouts(reference, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    found = write_layouts(reference, root)
    torch.save(
        {"state_dict": {"blocks.0.self_attn.q.lora_A.default.weight": torch.zeros(1, 24)}},
        found["official"] / LORA_FILE,
    )
    return {**found, "converted": convert_weights(found["official"], root / "converted", progress=False)}


def _outputs(pipe) -> dict[str, torch.Tensor]:
    """Fixed-input forwards of the four networks (text, image and VAE encoders, transformer)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([[3, 4, 5, 1, 0, 0]])
    text = pipe.text_encoder(ids, attention_mask=(ids > 0).long()).last_hidden_state
    image = pipe.image_encoder(torch.randn(1, 3, 28, 28, generator=g), output_hidden_states=True).hidden_states[-2]
    latent = pipe.vae.encode(torch.randn(1, 3, 5, 16, 16, generator=g)).latent_dist.mean
    noise = pipe.transformer(
        hidden_states=torch.randn(1, 36, 3, 4, 4, generator=g),
        timestep=torch.tensor([500]),
        encoder_hidden_states=torch.randn(1, 5, 32, generator=g),
        encoder_hidden_states_image=torch.randn(1, 5, 80, generator=g),
        pose_hidden_states=torch.randn(1, 16, 2, 4, 4, generator=g),
        face_pixel_values=torch.randn(1, 3, 5, 16, 16, generator=g),
        return_dict=False,
    )[0]
    return {"text": text, "image": image, "vae": latent, "transformer": noise}


def _assert_same_weights(a, b) -> None:
    for name in ("transformer", "vae", "text_encoder", "image_encoder"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys(), name
        for key in sa:
            assert torch.equal(sa[key].float(), sb[key].float()), f"{name}.{key}"


@pytest.mark.parametrize(
    ("which", "base", "layout"),
    [
        ("official", None, "official"),
        ("diffusers", None, "diffusers"),
        ("converted", None, "diffusers"),
        ("comfy", "official", "single-file"),
        ("single", "diffusers", "single-file"),
    ],
)
def test_each_layout_loads_the_same_weights_and_outputs(reference, layouts, which, base, layout) -> None:
    loaded = load_model(
        str(layouts[which]), dtype=torch.float32, progress=False, base=str(layouts[base]) if base else None
    )
    assert isinstance(loaded, LoadedModel) and loaded.layout == layout
    _assert_same_weights(reference, loaded.pipeline)
    want, got = _outputs(reference), _outputs(loaded.pipeline)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-5, msg=key)
    expect_lora = which in ("official", "converted", "comfy")
    assert (loaded.relight_lora is not None) == expect_lora
    if expect_lora:
        assert loaded.relight_lora.name == LORA_FILE


def test_official_image_processor_squashes_to_clip_size(layouts) -> None:
    from PIL import Image

    pipe = load_model(str(layouts["official"]), dtype=torch.float32, progress=False).pipeline
    wide = Image.new("RGB", (90, 30), (255, 0, 0))
    pixels = pipe.image_processor(images=wide, return_tensors="pt").pixel_values
    assert pixels.shape == (1, 3, 28, 28)  # whole image kept (no centre crop), like the official transform
    assert pixels[0, 0].min() > 1.5  # red channel normalised with CLIP mean/std: (1 - 0.481) / 0.269


def test_bf16_layouts_keep_the_same_fp32_modules(layouts) -> None:
    a = load_model(str(layouts["official"]), dtype=torch.bfloat16, progress=False).pipeline.transformer
    b = load_model(str(layouts["converted"]), dtype=torch.bfloat16, progress=False).pipeline.transformer
    dtypes = {n: p.dtype for n, p in a.named_parameters()}
    assert dtypes == {n: p.dtype for n, p in b.named_parameters()}
    assert dtypes["blocks.0.attn1.to_q.weight"] == torch.bfloat16
    assert dtypes["blocks.0.scale_shift_table"] == torch.float32  # diffusers' _keep_in_fp32_modules


def test_converted_folder_is_complete_and_conversion_refuses_to_overwrite(layouts) -> None:
    out = layouts["converted"]
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "WanAnimatePipeline"
    assert (out / LORA_FILE).is_file() and not out.with_name(out.name + ".partial").exists()
    assert (out / "transformer" / "diffusion_pytorch_model.safetensors").is_file()  # one shard: under 5 GB
    with pytest.raises(WanimateError, match="already exists"):
        convert_weights(layouts["official"], out, progress=False)
    with pytest.raises(WanimateError, match="already in the diffusers layout"):
        convert_weights(layouts["diffusers"], out.with_name("again"), progress=False)


def test_failed_conversion_leaves_nothing_behind(layouts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(convert, "_write_official_transformer", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        convert_weights(layouts["official"], tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unmatched_folder_error_lists_every_layout(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("not weights")
    with pytest.raises(WanimateError) as err:
        load_model(str(tmp_path), progress=False)
    message = str(err.value)
    for needed in ("model_index.json", "Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth", ".safetensors"):
        assert needed in message
    assert "\n" not in message


def test_incomplete_official_folder_names_the_missing_file(layouts, tmp_path: Path) -> None:
    import shutil

    broken = Path(shutil.copytree(layouts["official"], tmp_path / "broken"))
    (broken / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth").unlink()
    with pytest.raises(WanimateError, match="lacks models_clip_open-clip"):
        load_model(str(broken), progress=False)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_pickles_cannot_run_code(layouts, tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(layouts["official"], tmp_path / "evil"))
    marker = tmp_path / "pwned.txt"
    torch.save({"encoder.conv1.weight": _Evil(marker)}, folder / "Wan2.1_VAE.pth")
    with pytest.raises(WanimateError, match="refusing to load"):
        load_model(str(folder), dtype=torch.float32, progress=False)
    assert not marker.exists()


# --------------------------------------------------------------------------------------- hub cache


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private Hugging Face home (the tests run with HF_HUB_OFFLINE=1)."""
    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path / "hf" / "hub"


def test_missing_repo_offline_is_one_clear_error(hf_cache: Path) -> None:
    with pytest.raises(WanimateError) as err:
        load_model("Wan-AI/Wan2.2-Animate-14B", progress=False)
    message = str(err.value)
    assert "Wan-AI/Wan2.2-Animate-14B" in message
    assert "hf download Wan-AI/Wan2.2-Animate-14B --local-dir" in message and "--weights" in message


def test_cached_official_repo_is_converted_once_then_reused(
    layouts, hf_cache: Path, monkeypatch: pytest.MonkeyPatch, reference
) -> None:
    snapshot = put_in_cache(hf_cache, "Wan-AI/Wan2.2-Animate-14B", layouts["official"])
    first = load_model(dtype=torch.float32, progress=False)
    assert first.layout == "official"
    assert first.source == f"Wan-AI/Wan2.2-Animate-14B@{snapshot.name}"
    converted = hub.converted_dir("Wan-AI/Wan2.2-Animate-14B", snapshot)
    assert (converted / "model_index.json").is_file()
    assert first.relight_lora == converted / LORA_FILE
    _assert_same_weights(reference, first.pipeline)

    def no_second_conversion(*_: object, **__: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(convert, "convert_weights", no_second_conversion)
    again = load_model(dtype=torch.float32, progress=False)
    _assert_same_weights(reference, again.pipeline)

    found = {w.name: w.kind for w in hub.find_cached_weights()}
    assert found["Wan-AI/Wan2.2-Animate-14B"] == "hub"
    assert found[converted.name] == "converted"


def test_cached_diffusers_repo_and_single_file_with_hub_base(layouts, hf_cache: Path, reference) -> None:
    put_in_cache(hf_cache, "Wan-AI/Wan2.2-Animate-14B-Diffusers", layouts["diffusers"])
    loaded = load_model("Wan-AI/Wan2.2-Animate-14B-Diffusers", dtype=torch.float32, progress=False)
    assert loaded.layout == "diffusers" and loaded.relight_lora is None
    _assert_same_weights(reference, loaded.pipeline)

    put_in_cache(hf_cache, "Wan-AI/Wan2.2-Animate-14B", layouts["official"])
    single = load_model(str(layouts["comfy"]), dtype=torch.float32, progress=False)  # default base: the hub repo
    assert single.layout == "single-file" and single.relight_lora is not None
    _assert_same_weights(reference, single.pipeline)


def test_random_weights_and_bad_names() -> None:
    loaded = load_model("random:tiny", dtype=torch.bfloat16, progress=False)
    assert loaded.layout == "random" and loaded.pipeline.transformer.dtype == torch.bfloat16
    with pytest.raises(WanimateError, match="unknown model config"):
        load_model("random:huge", progress=False)
    with pytest.raises(WanimateError, match="not a file, a folder or a hub repo id"):
        load_model("./no/such/folder", progress=False)


def test_single_file_without_a_base_says_so(layouts, hf_cache: Path) -> None:
    with pytest.raises(WanimateError) as err:
        load_model(str(layouts["comfy"]), progress=False)
    assert "comfy_native.safetensors needs a base" in str(err.value)
    assert "hf download Wan-AI/Wan2.2-Animate-14B" in str(err.value)
    with pytest.raises(WanimateError, match=r"must be a \.safetensors file"):
        load_model(str(layouts["official"] / "Wan2.1_VAE.pth"), progress=False)
