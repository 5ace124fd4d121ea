"""Load Wan2.2-Animate-14B weights in any layout into a diffusers ``WanAnimatePipeline``.

One entry point, :func:`load_model`, accepts what users actually have: the official hub repo (converted
once, then cached), the diffusers repo, a local folder of either layout, a single ComfyUI-style
transformer file on top of a base, or ``random:<size>`` for tests. Every layout ends in the same
diffusers/transformers classes with the same dtype rules, so they produce identical outputs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.models import hub, official, official_io
from wanimate.models.official_io import LORA_FILE, LORA_PEFT_DIR, find_relight_lora

DIFFUSERS_PARTS = ("transformer", "vae", "text_encoder", "tokenizer", "image_encoder", "image_processor", "scheduler")
LAYOUT_HELP = (
    "a diffusers folder needs model_index.json and "
    + ", ".join(f"{p}/" for p in DIFFUSERS_PARTS)
    + "; an official folder needs "
    + ", ".join(official_io.OFFICIAL_FILES)
    + "; a single transformer file must be a .safetensors file (its other components come from base)"
)


@dataclass
class LoadedModel:
    """A ready pipeline plus where it came from; ``relight_lora`` is set when the weights ship the LoRA."""

    pipeline: Any  # diffusers.WanAnimatePipeline
    layout: str  # "diffusers" | "official" | "single-file" | "random"
    source: str
    relight_lora: Path | None


def detect_layout(folder: Path) -> str:
    """``"diffusers"`` or ``"official"``; anything else is an error that says what each layout needs."""
    if (folder / "model_index.json").is_file():
        missing = [p for p in DIFFUSERS_PARTS if not (folder / p).is_dir()]
        if missing:
            raise WanimateError(f"diffusers folder {folder} lacks {', '.join(p + '/' for p in missing)}")
        return "diffusers"
    if (folder / official_io.DIT_CONFIG).is_file() and official_io.dit_shards(folder):
        needed = {
            official_io.VAE_FILE: (folder / official_io.VAE_FILE).is_file(),
            official_io.T5_FILE: (folder / official_io.T5_FILE).is_file(),
            official_io.T5_TOKENIZER + "/": (folder / official_io.T5_TOKENIZER).is_dir(),
            official_io.CLIP_FILE: (folder / official_io.CLIP_FILE).is_file(),
        }
        missing = [name for name, ok in needed.items() if not ok]
        if missing:
            raise WanimateError(f"official-layout folder {folder} lacks {', '.join(missing)}")
        return "official"
    raise WanimateError(f"{folder} matches no weights layout: {LAYOUT_HELP}")


def load_model(
    weights: str | Path = hub.DEFAULT_REPO,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    progress: bool = True,
    base: str | None = None,
    revision: str | None = None,
) -> LoadedModel:
    """Build the pipeline for ``weights``; all components end on ``device``, the transformer in ``dtype``.

    The text and image encoders also use ``dtype``; the VAE stays float32 like the official pipeline.
    ``base`` (a folder or hub id, default the official repo) supplies the other components when
    ``weights`` is a single transformer file. ``revision`` pins a hub revision.
    """
    device = torch.device(device)
    weights = str(weights)
    with _progress(progress):
        if weights.startswith("random:"):
            from wanimate.models.factory import build_pipeline

            pipe = build_pipeline(weights.removeprefix("random:"))
            pipe.transformer.to(dtype)
            return LoadedModel(pipe.to(device), "random", weights, None)
        path = Path(weights).expanduser()
        if path.is_file():
            return _load_single_file(path.resolve(), base or hub.DEFAULT_REPO, dtype, device, progress)
        where = _resolve_folder(weights, revision, progress)
        if where.load_as == "official":
            pipe = _load_official(where.folder, dtype, device)
        else:
            pipe = _load_diffusers(where.folder, dtype)
        return LoadedModel(pipe.to(device), where.layout, where.source, find_relight_lora(where.folder))


@dataclass(frozen=True)
class _Resolved:
    folder: Path  # what gets read
    load_as: str  # layout of ``folder``
    layout: str  # layout the user supplied (a converted hub repo reads as diffusers but was official)
    source: str


def _resolve_folder(weights: str, revision: str | None, progress: bool) -> _Resolved:
    """Find the folder behind ``weights``; an official hub repo resolves to its cached conversion."""
    path = Path(weights).expanduser()
    if path.is_dir():
        layout = detect_layout(path)
        return _Resolved(path.resolve(), layout, layout, str(path.resolve()))
    if not hub.looks_like_repo_id(weights):
        raise WanimateError(f"weights {weights!r} is not a file, a folder or a hub repo id like {hub.DEFAULT_REPO}")
    snapshot = hub.resolve_repo(weights, revision, progress)
    source = f"{weights}@{snapshot.name}"
    if detect_layout(snapshot) == "diffusers":
        return _Resolved(snapshot, "diffusers", "diffusers", source)
    converted = hub.converted_dir(weights, snapshot)
    if not converted.is_dir():
        convert_weights(snapshot, converted, progress=progress)
    return _Resolved(converted, "diffusers", "official", source)


@contextmanager
def _progress(enabled: bool) -> Iterator[None]:
    """Turn the diffusers/transformers/hub progress bars on or off, restoring them afterwards."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    before = (dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled())
    for module in (dlog, tlog):
        (module.enable_progress_bar if enabled else module.disable_progress_bar)()
    try:
        with hub.hub_progress(enabled):
            yield
    finally:
        for module, was in zip((dlog, tlog), before, strict=True):
            (module.enable_progress_bar if was else module.disable_progress_bar)()


def _load_diffusers(folder: Path, dtype: torch.dtype, transformer: Any = None) -> Any:
    from diffusers import AutoencoderKLWan, WanAnimatePipeline, WanAnimateTransformer3DModel

    if transformer is None:
        transformer = WanAnimateTransformer3DModel.from_pretrained(folder, subfolder="transformer", torch_dtype=dtype)
    vae = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32)
    return WanAnimatePipeline.from_pretrained(folder, transformer=transformer, vae=vae, torch_dtype=dtype)


def _load_official(folder: Path, dtype: torch.dtype, device: torch.device, transformer: Any = None) -> Any:
    from diffusers import WanAnimatePipeline

    from wanimate.models.factory import build_scheduler

    if transformer is None:
        transformer = official_io.load_official_transformer(folder, dtype, device)
    image_encoder = official_io.load_official_image_encoder(folder, dtype)
    return WanAnimatePipeline(
        tokenizer=official_io.load_official_tokenizer(folder),
        text_encoder=official_io.load_official_text_encoder(folder, dtype),
        vae=official_io.load_official_vae(folder),
        scheduler=build_scheduler(),
        image_processor=official_io.official_image_processor(image_encoder),
        image_encoder=image_encoder,
        transformer=transformer,
    )


def _load_single_file(path: Path, base: str, dtype: torch.dtype, device: torch.device, progress: bool) -> LoadedModel:
    """A lone transformer file (native, ComfyUI-prefixed or diffusers keys) on top of ``base``'s components.

    The file's keys are converted with :mod:`wanimate.models.official` and assigned strictly; diffusers'
    ``from_single_file`` is not used because its Animate converter hard-codes the 512 px motion encoder,
    silently leaves missing tensors uninitialised and casts everything (norms included) to one dtype,
    which would make this layout differ numerically from the others.
    """
    if path.suffix != ".safetensors":
        raise WanimateError(f"single-file weights must be a .safetensors file, got {path.name}")
    if Path(base).expanduser().is_file():
        raise WanimateError(f"--base must be a folder or hub repo id, not a file ({base})")
    try:
        where = _resolve_folder(base, None, progress)
    except WanimateError as exc:
        raise WanimateError(f"{path.name} needs a base for its other components (pass base=...): {exc}") from exc
    folder = where.folder
    if where.load_as == "official":
        config = official_io.official_dit_config(folder)
    else:
        from diffusers import WanAnimateTransformer3DModel

        config = dict(WanAnimateTransformer3DModel.load_config(folder / "transformer"))
    keys = list(official_io.safetensors_shapes([path]))
    tensors = official_io.iter_safetensors(path)
    if official.is_native_dit(keys):
        tensors = official.dit_native_to_diffusers(tensors, keys)
    transformer = official_io.build_transformer(config, tensors, dtype, device)
    if where.load_as == "official":
        pipe = _load_official(folder, dtype, device, transformer)
    else:
        pipe = _load_diffusers(folder, dtype, transformer)
    return LoadedModel(pipe.to(device), "single-file", str(path), find_relight_lora(folder))


def convert_weights(src: str | Path, dst: Path, *, progress: bool = True) -> Path:
    """Write an official-layout folder or hub repo as a diffusers folder at ``dst`` (atomically).

    Components are converted one at a time and the DiT shard by shard, so peak memory stays at one
    shard plus the text encoder. The relighting LoRA is placed at ``dst/relighting_lora.ckpt`` (or
    ``dst/relighting_lora/`` for a PEFT-only source) where :func:`load_model` finds it again.
    """
    dst = Path(dst)
    if dst.exists():
        raise WanimateError(f"{dst} already exists; choose a new output folder")
    src_path = Path(src).expanduser()
    if src_path.is_dir():
        folder = src_path.resolve()
    elif hub.looks_like_repo_id(str(src)):
        folder = hub.resolve_repo(str(src), None, progress)
    else:
        raise WanimateError(f"{src} is not a folder or a hub repo id")
    if detect_layout(folder) != "official":
        raise WanimateError(f"{src} is already in the diffusers layout; pass it to --weights directly")
    partial = dst.with_name(dst.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with _progress(progress):
            _write_diffusers(folder, partial, progress)
        partial.rename(dst)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return dst


def _write_diffusers(folder: Path, out: Path, progress: bool) -> None:
    import diffusers
    from tqdm.auto import tqdm

    from wanimate.models.factory import build_scheduler

    steps = ["transformer", "vae", "text_encoder", "image_encoder", "tokenizer", "scheduler", "relighting LoRA"]
    bar = tqdm(steps, desc="converting", disable=not progress)
    _write_transformer(folder, out / "transformer")
    bar.update()
    official_io.load_official_vae(folder).save_pretrained(out / "vae")
    bar.update()
    text_encoder = official_io.load_official_text_encoder(folder, None)
    text_encoder.save_pretrained(out / "text_encoder", max_shard_size="5GB")
    del text_encoder
    bar.update()
    image_encoder = official_io.load_official_image_encoder(folder, None)
    image_encoder.save_pretrained(out / "image_encoder")
    official_io.official_image_processor(image_encoder).save_pretrained(out / "image_processor")
    bar.update()
    tokenizer = official_io.load_official_tokenizer(folder)
    tokenizer.save_pretrained(out / "tokenizer")
    bar.update()
    build_scheduler().save_pretrained(out / "scheduler")
    bar.update()
    lora = find_relight_lora(folder)
    if lora is not None and lora.is_file():
        _link_or_copy(lora, out / LORA_FILE)
    elif lora is not None:
        shutil.copytree(lora, out / LORA_PEFT_DIR)
    bar.update()
    bar.close()
    index = {
        "_class_name": "WanAnimatePipeline",
        "_diffusers_version": diffusers.__version__,
        "image_encoder": ["transformers", type(image_encoder).__name__],
        "image_processor": ["transformers", "CLIPImageProcessor"],
        "scheduler": ["diffusers", "UniPCMultistepScheduler"],
        "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", type(tokenizer).__name__],
        "transformer": ["diffusers", "WanAnimateTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLWan"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def _write_transformer(folder: Path, out: Path) -> None:
    """Convert the DiT shard by shard into diffusers' sharded safetensors layout (stored dtype kept)."""
    from accelerate import init_empty_weights
    from diffusers import WanAnimateTransformer3DModel
    from safetensors.torch import save_file

    out.mkdir(parents=True)
    with init_empty_weights():
        WanAnimateTransformer3DModel.from_config(official_io.official_dit_config(folder)).save_config(out)
    shards = official_io.dit_shards(folder)
    all_keys = list(official_io.safetensors_shapes(shards))
    weight_map: dict[str, str] = {}
    total = 0
    for i, shard in enumerate(shards):
        name = (
            "diffusion_pytorch_model.safetensors"
            if len(shards) == 1
            else f"diffusion_pytorch_model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        )
        tensors = {
            k: v.contiguous()
            for k, v in official.dit_native_to_diffusers(official_io.iter_safetensors(shard), all_keys)
        }
        save_file(tensors, out / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
        total += sum(t.numel() * t.element_size() for t in tensors.values())
    if len(shards) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (out / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link when possible: the 1.4 GB LoRA then costs no extra disk next to the hub cache."""
    try:
        os.link(src.resolve(), dst)
    except OSError:
        shutil.copy2(src, dst)
