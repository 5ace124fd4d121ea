"""Load Wan weights in any layout into a diffusers pipeline: Wan2.2-Animate-14B or Wan2.1-I2V-14B.

One entry point, :func:`load_model`, accepts what users actually have: the official hub repo (converted
once, then cached), the diffusers repo, a local folder of either layout, a single ComfyUI-style
transformer file on top of a base, or ``random:<size>`` for tests. Every layout ends in the same
diffusers/transformers classes with the same dtype rules, so they produce identical outputs. The
``family`` (:mod:`wanimate.models.families`) picks the classes and refuses weights of another family.

The transformer always streams in tensor by tensor (:mod:`wanimate.models.streaming`), quantized as it
arrives when ``quantize`` asks for it, so the host never holds the full-precision DiT on the way to a
quantized one; a folder pre-quantized by ``wanimate convert --quantize`` loads as stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wanimate.errors import WanimateError
from wanimate.models import hub, official, official_io, quantized
from wanimate.models.families import ANIMATE, FAMILIES, ModelFamily, check_diffusers, check_official, describe_official
from wanimate.models.official_io import find_relight_lora
from wanimate.models.streaming import read_safetensors, stream_model

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
    """A ready pipeline plus where it came from; ``relight_lora`` is set when the weights ship the LoRA.

    ``quantization`` is how the transformer's weights are held: ``none``, ``int8`` or ``fp8``
    (quantized while loading, or stored so in a pre-quantized folder).
    """

    pipeline: Any  # the family's diffusers pipeline (WanAnimatePipeline or WanImageToVideoPipeline)
    layout: str  # "diffusers" | "official" | "single-file" | "random"
    source: str
    relight_lora: Path | None
    family: ModelFamily = ANIMATE
    quantization: str = "none"


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
    quantize: str = "none",
) -> LoadedModel:
    """Build the pipeline for ``weights``; all components end on ``device``, the transformer in ``dtype``.

    ``weights`` defaults to the family's official hub repo. The text and image encoders also use
    ``dtype``; the VAE stays float32 like the official pipeline. ``base`` (a folder or hub id, default
    the official repo) supplies the other components when ``weights`` is a single transformer file.
    ``revision`` pins a hub revision. Weights of another family are refused with one line.
    ``quantize`` (``none``, ``int8``, ``fp8``) quantizes the transformer layer by layer while it loads;
    a pre-quantized folder loads as stored, and asking it for another mode is an error.
    """
    device = torch.device(device)
    weights = str(weights) if weights is not None else family.default_repo
    with progress_bars(progress):
        if weights.startswith("random:"):
            pipe = _random_pipeline(weights.removeprefix("random:"), family, dtype, device, quantize)
            return LoadedModel(pipe, "random", weights, None, family, quantize)
        path = Path(weights).expanduser()
        if path.is_file():
            base = base or family.default_repo
            return _load_single_file(path.resolve(), base, dtype, device, progress, family, quantize)
        where = resolve_folder(weights, revision, progress, family)
        transformer, mode = load_transformer(where.folder, where.load_as, dtype, device, quantize, family)
        if where.load_as == "official":
            pipe = _load_official(where.folder, dtype, family, transformer)
        else:
            pipe = _load_diffusers(where.folder, dtype, family, transformer)
        lora = find_relight_lora(where.folder) if family is ANIMATE else None
        return LoadedModel(pipe.to(device), where.layout, where.source, lora, family, mode)


def load_transformer(
    folder: Path,
    layout: str,
    dtype: torch.dtype,
    device: torch.device,
    quantize: str = "none",
    family: ModelFamily = ANIMATE,
) -> tuple[Any, str]:
    """The transformer of a diffusers or official folder, streamed; returns it with its quantization mode."""
    if layout == "official":
        return official_io.load_official_transformer(folder, dtype, device, family, quantize), quantize
    sub = folder / "transformer"
    config = transformer_config(folder, layout, family)
    stored, stored_dtype = quantized.stored_quantization(config, str(sub))
    mode = quantized.resolve_quantize(quantize, stored, str(folder))
    quantized.check_stored_dtype(stored_dtype, dtype, str(folder))
    tensors = (item for shard in official_io.dit_shards(sub) for item in read_safetensors(shard))
    cls = family.transformer_cls()
    model = stream_model(cls, quantized.plain_config(config), tensors, dtype=dtype, device=device, quantize=mode)
    return model, mode


def load_single_file_transformer(
    path: Path,
    config: dict[str, Any],
    dtype: torch.dtype,
    device: torch.device,
    quantize: str = "none",
    family: ModelFamily = ANIMATE,
) -> Any:
    """A transformer from one safetensors file (native, ComfyUI-prefixed or diffusers keys), streamed."""
    keys = list(official_io.safetensors_shapes([path]))
    tensors = read_safetensors(path)
    if official.is_native_dit(keys):
        tensors = official.dit_native_to_diffusers(tensors, keys)
    return stream_model(family.transformer_cls(), config, tensors, dtype=dtype, device=device, quantize=quantize)


def transformer_config(folder: Path, layout: str, family: ModelFamily = ANIMATE) -> dict[str, Any]:
    """The diffusers transformer config of a resolved folder (read from disk, no weights)."""
    if layout == "official":
        return official_io.official_dit_config(folder, family)
    return json.loads((folder / "transformer" / "config.json").read_text())


def _random_pipeline(name: str, family: ModelFamily, dtype: torch.dtype, device: torch.device, quantize: str) -> Any:
    """``random:NAME``: built whole in torch's init, or (quantized) layer by layer from per-tensor draws."""
    from wanimate.models import factory
    from wanimate.models.random_weights import build_streamed_transformer

    if quantize == "none":
        pipe = factory.build_family_pipeline(family, name)
        pipe.transformer.to(dtype)
        return pipe.to(device)
    pipe = factory.build_family_pipeline(family, name, with_transformer=False)
    transformer = build_streamed_transformer(
        factory.model_config(name), seed=3, family=family, dtype=dtype, device=device, quantize=quantize
    )
    pipe.register_modules(transformer=transformer)
    return pipe.to(device)


@dataclass(frozen=True)
class _Resolved:
    folder: Path  # what gets read
    load_as: str  # layout of ``folder``
    layout: str  # layout the user supplied (a converted hub repo reads as diffusers but was official)
    source: str


def resolve_folder(weights: str, revision: str | None, progress: bool, family: ModelFamily) -> _Resolved:
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
        from wanimate.models import convert

        convert.convert_weights(snapshot, converted, progress=progress)
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
def progress_bars(enabled: bool) -> Iterator[None]:
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


def detect_diffusers_family(folder: Path) -> ModelFamily:
    """Which family a diffusers folder holds, from the pipeline class its ``model_index.json`` names."""
    name = json.loads((folder / "model_index.json").read_text()).get("_class_name")
    for family in FAMILIES:
        if family.pipeline_class == name:
            return family
    supported = " or ".join(f"{f.title} ({f.pipeline_class})" for f in FAMILIES)
    raise WanimateError(f"{folder} holds a {name}; {supported} are supported")


def _load_diffusers(folder: Path, dtype: torch.dtype, family: ModelFamily, transformer: Any) -> Any:
    from diffusers import AutoencoderKLWan

    vae = AutoencoderKLWan.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32)
    return family.pipeline_cls().from_pretrained(folder, transformer=transformer, vae=vae, torch_dtype=dtype)


def _load_official(folder: Path, dtype: torch.dtype, family: ModelFamily, transformer: Any) -> Any:
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
    path: Path,
    base: str,
    dtype: torch.dtype,
    device: torch.device,
    progress: bool,
    family: ModelFamily,
    quantize: str,
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
        where = resolve_folder(base, None, progress, family)
    except WanimateError as exc:
        raise WanimateError(f"{path.name} needs a base for its other components (pass base=...): {exc}") from exc
    folder = where.folder
    config = quantized.plain_config(transformer_config(folder, where.load_as, family))
    transformer = load_single_file_transformer(path, config, dtype, device, quantize, family)
    if where.load_as == "official":
        pipe = _load_official(folder, dtype, family, transformer)
    else:
        pipe = _load_diffusers(folder, dtype, family, transformer)
    lora = find_relight_lora(folder) if family is ANIMATE else None
    return LoadedModel(pipe.to(device), "single-file", str(path), lora, family, quantize)
