"""Load Wan weights in any layout into a diffusers pipeline: Wan2.2-Animate-14B or Wan2.1-I2V-14B.

One entry point, :func:`load_model`, accepts what users actually have: the official hub repo (converted
once, then cached), the diffusers repo, a local folder of either layout, a single ComfyUI-style
transformer file on top of a base, or ``random:<size>`` for tests. Every layout ends in the same
diffusers/transformers classes with the same dtype rules, so they produce identical outputs. The
``family`` (:mod:`wanimate.models.families`) picks the classes and refuses weights of another family.
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
from wanimate.models.families import ANIMATE, FAMILIES, ModelFamily, check_diffusers, check_official, describe_official
from wanimate.models.official_io import LORA_FILE, LORA_PEFT_DIR, find_relight_lora
from wanimate.paths import check_apart, make_parents, os_faults, output_folder, remove_empty, temp_sibling

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

    pipeline: Any  # the family's diffusers pipeline (WanAnimatePipeline or WanImageToVideoPipeline)
    layout: str  # "diffusers" | "official" | "single-file" | "random"
    source: str
    relight_lora: Path | None
    family: ModelFamily = ANIMATE


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
    weights: str | Path | None = None,
    *,
    family: ModelFamily = ANIMATE,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    progress: bool = True,
    base: str | None = None,
    revision: str | None = None,
) -> LoadedModel:
    """Build the pipeline for ``weights``; all components end on ``device``, the transformer in ``dtype``.

    ``weights`` defaults to the family's official hub repo. The text and image encoders also use
    ``dtype``; the VAE stays float32 like the official pipeline. ``base`` (a folder or hub id, default
    the official repo) supplies the other components when ``weights`` is a single transformer file.
    ``revision`` pins a hub revision. Weights of another family are refused with one line.
    """
    device = torch.device(device)
    weights = str(weights) if weights is not None else family.default_repo
    with _progress(progress):
        if weights.startswith("random:"):
            from wanimate.models.factory import build_family_pipeline

            pipe = build_family_pipeline(family, weights.removeprefix("random:"))
            pipe.transformer.to(dtype)
            return LoadedModel(pipe.to(device), "random", weights, None, family)
        path = Path(weights).expanduser()
        if path.is_file():
            return _load_single_file(path.resolve(), base or family.default_repo, dtype, device, progress, family)
        where = _resolve_folder(weights, revision, progress, family)
        if where.load_as == "official":
            pipe = _load_official(where.folder, dtype, device, family)
        else:
            pipe = _load_diffusers(where.folder, dtype, family)
        lora = find_relight_lora(where.folder) if family is ANIMATE else None
        return LoadedModel(pipe.to(device), where.layout, where.source, lora, family)


@dataclass(frozen=True)
class _Resolved:
    folder: Path  # what gets read
    load_as: str  # layout of ``folder``
    layout: str  # layout the user supplied (a converted hub repo reads as diffusers but was official)
    source: str


def _resolve_folder(weights: str, revision: str | None, progress: bool, family: ModelFamily) -> _Resolved:
    """Find the folder behind ``weights``; an official hub repo resolves to its cached conversion.

    The folder is checked to hold ``family``'s weights before anything is converted or read.
    """
    path = Path(weights).expanduser()
    if path.is_dir():
        layout = detect_layout(path)
        _check_family(path.resolve(), layout, family)
        return _Resolved(path.resolve(), layout, layout, str(path.resolve()))
    if not hub.looks_like_repo_id(weights):
        raise WanimateError(f"weights {weights!r} is not a file, a folder or a hub repo id like {family.default_repo}")
    snapshot = hub.resolve_repo(weights, revision, progress)
    source = f"{weights}@{snapshot.name}"
    layout = detect_layout(snapshot)
    _check_family(snapshot, layout, family, label=weights)
    if layout == "diffusers":
        return _Resolved(snapshot, "diffusers", "diffusers", source)
    converted = hub.converted_dir(weights, snapshot)
    if not converted.is_dir():
        convert_weights(snapshot, converted, progress=progress)
    return _Resolved(converted, "diffusers", "official", source)


def _check_family(folder: Path, layout: str, family: ModelFamily, label: str | None = None) -> None:
    """Refuse a folder of another model family (from its configs only; no tensor is read)."""
    where = label or str(folder)
    if layout == "official":
        official_io.official_dit_config(folder, family)
        return
    index = json.loads((folder / "model_index.json").read_text())
    config_path = folder / "transformer" / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    check_diffusers(family, index, config, where)


def detect_official_family(folder: Path) -> ModelFamily:
    """Which family an official folder holds (Animate has the motion encoder; Wan2.1-I2V does not)."""
    keys = set(official_io.safetensors_shapes(official_io.dit_shards(folder)))
    config = json.loads((folder / official_io.DIT_CONFIG).read_text())
    for family in FAMILIES:
        try:
            check_official(family, config, keys, str(folder))
        except WanimateError:
            continue
        return family
    raise WanimateError(
        f"{folder} holds a Wan DiT wanimate does not run ({describe_official(config, keys)}); "
        + " or ".join(f"{f.title} ({f.default_repo})" for f in FAMILIES)
        + " are supported"
    )


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


def _load_diffusers(folder: Path, dtype: torch.dtype, family: ModelFamily, transformer: Any = None) -> Any:
    from diffusers import AutoencoderKLWan

    if transformer is None:
        transformer = family.transformer_cls().from_pretrained(folder, subfolder="transformer", torch_dtype=dtype)
    vae = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32)
    return family.pipeline_cls().from_pretrained(folder, transformer=transformer, vae=vae, torch_dtype=dtype)


def _load_official(
    folder: Path, dtype: torch.dtype, device: torch.device, family: ModelFamily, transformer: Any = None
) -> Any:
    if transformer is None:
        transformer = official_io.load_official_transformer(folder, dtype, device, family)
    image_encoder = official_io.load_official_image_encoder(folder, dtype)
    return family.pipeline_cls()(
        tokenizer=official_io.load_official_tokenizer(folder),
        text_encoder=official_io.load_official_text_encoder(folder, dtype),
        vae=official_io.load_official_vae(folder),
        scheduler=family.build_scheduler(),
        image_processor=official_io.official_image_processor(image_encoder),
        image_encoder=image_encoder,
        transformer=transformer,
    )


def _load_single_file(
    path: Path, base: str, dtype: torch.dtype, device: torch.device, progress: bool, family: ModelFamily
) -> LoadedModel:
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
        where = _resolve_folder(base, None, progress, family)
    except WanimateError as exc:
        raise WanimateError(f"{path.name} needs a base for its other components (pass base=...): {exc}") from exc
    folder = where.folder
    if where.load_as == "official":
        config = official_io.official_dit_config(folder, family)
    else:
        config = dict(family.transformer_cls().load_config(folder / "transformer"))
    keys = list(official_io.safetensors_shapes([path]))
    tensors = official_io.iter_safetensors(path)
    if official.is_native_dit(keys):
        tensors = official.dit_native_to_diffusers(tensors, keys)
    transformer = official_io.build_transformer(config, tensors, dtype, device, family)
    if where.load_as == "official":
        pipe = _load_official(folder, dtype, device, family, transformer)
    else:
        pipe = _load_diffusers(folder, dtype, family, transformer)
    lora = find_relight_lora(folder) if family is ANIMATE else None
    return LoadedModel(pipe.to(device), "single-file", str(path), lora, family)


def convert_weights(src: str | Path, dst: Path, *, progress: bool = True) -> Path:
    """Write an official-layout folder or hub repo as a diffusers folder at ``dst`` (atomically).

    The family (Wan2.2-Animate or Wan2.1-I2V) is read from the folder. Components are converted one at
    a time and the DiT shard by shard, so peak memory stays at one shard plus the text encoder. The
    relighting LoRA is placed at ``dst/relighting_lora.ckpt`` (or ``dst/relighting_lora/`` for a
    PEFT-only source) where :func:`load_model` finds it again.
    """
    dst = Path(dst)
    if os.path.lexists(dst):
        raise WanimateError(f"{dst} already exists; choose a new output folder")
    output_folder(dst, "DST")
    src_path = Path(src).expanduser()
    if src_path.is_dir():
        folder = src_path.resolve()
    elif src_path.exists():
        raise WanimateError(f"{src} is a file; convert reads an official-layout folder or a hub repo id")
    elif hub.looks_like_repo_id(str(src)):
        use = f"run `wanimate convert {{local}} {dst}`"
        folder = hub.resolve_repo(str(src), None, progress, use=use)
    else:
        raise WanimateError(f"{src} is not a folder or a hub repo id")
    check_apart({"SRC folder": folder}, {"DST": dst})
    if detect_layout(folder) != "official":
        raise WanimateError(f"{src} is already in the diffusers layout; pass it to --weights directly")
    family = detect_official_family(folder)
    partial = temp_sibling(dst)
    if os.path.lexists(partial):
        raise WanimateError(f"{partial} is in the way (left by an interrupted convert?); remove it and run again")
    with os_faults():
        created = make_parents(dst)
        partial.mkdir()
        try:
            with _progress(progress):
                _write_diffusers(folder, partial, progress, family)
            partial.rename(dst)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)  # made by this call, moments ago
            remove_empty(created)
            raise
    return dst


def _write_diffusers(folder: Path, out: Path, progress: bool, family: ModelFamily) -> None:
    import diffusers
    from tqdm.auto import tqdm

    steps = ["transformer", "vae", "text_encoder", "image_encoder", "tokenizer", "scheduler", "relighting LoRA"]
    bar = tqdm(steps, desc="converting", disable=not progress)
    _write_transformer(folder, out / "transformer", family)
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
    scheduler = family.build_scheduler()
    scheduler.save_pretrained(out / "scheduler")
    bar.update()
    lora = find_relight_lora(folder)
    if lora is not None and lora.is_file():
        _link_or_copy(lora, out / LORA_FILE)
    elif lora is not None:
        shutil.copytree(lora, out / LORA_PEFT_DIR)
    bar.update()
    bar.close()
    index = {
        "_class_name": family.pipeline_class,
        "_diffusers_version": diffusers.__version__,
        "image_encoder": ["transformers", type(image_encoder).__name__],
        "image_processor": ["transformers", "CLIPImageProcessor"],
        "scheduler": ["diffusers", type(scheduler).__name__],
        "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", type(tokenizer).__name__],
        "transformer": ["diffusers", family.transformer_class],
        "vae": ["diffusers", "AutoencoderKLWan"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def _write_transformer(folder: Path, out: Path, family: ModelFamily) -> None:
    """Convert the DiT shard by shard into diffusers' sharded safetensors layout (stored dtype kept)."""
    from accelerate import init_empty_weights
    from safetensors.torch import save_file

    out.mkdir(parents=True)
    with init_empty_weights():
        family.transformer_cls().from_config(official_io.official_dit_config(folder, family)).save_config(out)
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
